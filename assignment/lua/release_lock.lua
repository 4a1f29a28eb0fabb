--[[ release_lock.lua: release a lock only if we still hold it (compare-and-delete).

Standalone: not prefixed with _lib.lua (no tenant state, no epoch).
KEYS[1]: the lock key (a tenant's rebuild_lock).
ARGV[1]: the holder's token (set with SET NX PX when the lock was taken).
Returns 1 when the lock was ours and is gone, 0 when it had expired or another holder has it now,
e.g. {1}.
Invariant: a holder whose lock expired never deletes the next holder's lock (a GET then DEL from the
client could, between the two commands).
]]
if #KEYS ~= 1 or ARGV[1] == nil or ARGV[1] == '' then
  return redis.error_reply('BADARGS release_lock expects 1 key and a token')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
