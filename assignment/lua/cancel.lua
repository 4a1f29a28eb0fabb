--[[ cancel.lua: a waiting call leaves the queue (cancelled by the client, or abandoned).

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments: 1 call_id
Returns {'REMOVED'} when it was waiting, {'ABSENT'} when it was not (already handed to an agent, or
never queued), {'NOEPOCH'}.
Invariant: a call leaves the queue once; an agent's call is never touched here.
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 1 or arg(1) == '' then return redis.error_reply('BADARGS cancel expects 1 argument') end
if redis.call('ZREM', QUEUE, arg(1)) == 1 then return {'REMOVED'} end
return {'ABSENT'}
