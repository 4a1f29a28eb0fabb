--[[ unclaim.lua: undo a claim whose Postgres write failed, so nothing stays half-assigned.

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments (arg(i)):
  1 call_id
  2 agent_id           the agent the claim chose, or '' when the call was queued
  3 idle_since_ms      that agent's idle clock before the claim ('' when queued)
Returns {'UNDONE'} when the claim's effect was reverted, {'GONE'} when it had already been changed by
someone else (then nothing is written), {'NOEPOCH'}, {'STALE_TYPES'}.
Invariant: an agent gets back its own idle clock, so an undone claim never moves it in the line.
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 3 or arg(1) == '' then return redis.error_reply('BADARGS unclaim expects 3 arguments') end
local call_id, agent_id, score = arg(1), arg(2), tonumber(arg(3))
if agent_id == '' then
  if redis.call('ZREM', QUEUE, call_id) == 1 then return {'UNDONE'} end
  return {'GONE'}
end
if not score then return redis.error_reply('BADARGS unclaim') end
if redis.call('HGET', AGENT_CALL, agent_id) ~= call_id then return {'GONE'} end
local type_id = redis.call('HGET', AGENT_TYPE, agent_id) or ''
if not TYPE_KEY[type_id] then return {'STALE_TYPES'} end
join_idle(agent_id, type_id, score)
return {'UNDONE'}
