--[[ rebuild.lua: replace a tenant's whole state with the one read from Postgres, atomically.

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments (arg(i)), in four counted groups:
  1 epoch              the new epoch value (a fresh UUID)
  2 n_idle, then n_idle triples   agent_id, type_id, idle_since_ms          (AVAILABLE agents)
  then n_busy, then n_busy triples  agent_id, type_id, call_id              (BUSY agents)
  then n_other, then n_other triples agent_id, type_id, status              (OFFLINE, BREAK, WRAP_UP)
  then n_queue, then n_queue pairs   call_id, queue_score                   (QUEUED calls)
Returns {'REBUILT', epoch, n_idle, n_busy, n_other, n_queue}.
Invariant: after it, Redis equals Postgres; it checks every group before deleting anything.
]]
local i = 1
local function take() local v = arg(i); i = i + 1; return v end
local epoch = take()
if not epoch or epoch == '' then return redis.error_reply('BADARGS rebuild epoch') end
local groups = {}
for g = 1, 4 do
  local n = tonumber(take())
  local width = (g == 4) and 2 or 3
  if not n or n < 0 then return redis.error_reply('BADARGS rebuild count') end
  local rows = {}
  for r = 1, n do
    local row = {}
    for c = 1, width do
      local v = take()
      if v == nil then return redis.error_reply('BADARGS rebuild row') end
      row[c] = v
    end
    if g <= 3 and not TYPE_KEY[row[2]] then return redis.error_reply('BADARGS rebuild type ' .. row[2]) end
    rows[r] = row
  end
  groups[g] = rows
end
if i - 1 ~= nargs() then return redis.error_reply('BADARGS rebuild trailing arguments') end

for k = 2, #KEYS do redis.call('DEL', KEYS[k]) end
for _, row in ipairs(groups[1]) do join_idle(row[1], row[2], tonumber(row[3])) end
for _, row in ipairs(groups[2]) do
  redis.call('HSET', AGENT_TYPE, row[1], row[2])
  hold(row[1], row[3])
end
for _, row in ipairs(groups[3]) do
  redis.call('HSET', AGENT_TYPE, row[1], row[2])
  redis.call('HSET', STATUS, row[1], row[3])
end
for _, row in ipairs(groups[4]) do redis.call('ZADD', QUEUE, tonumber(row[2]), row[1]) end
redis.call('SET', EPOCH, epoch)
return {'REBUILT', epoch, tostring(#groups[1]), tostring(#groups[2]), tostring(#groups[3]), tostring(#groups[4])}
