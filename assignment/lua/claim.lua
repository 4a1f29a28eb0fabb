--[[ claim.lua: a new call arrives. Atomically: hand it to an agent, or queue it, or reject it.

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments (arg(i)):
  1 call_id            the new call's UUID
  2 strategy           longest_idle | best_conversion | round_robin | random
  3 queue_score        (9 - priority) * 1e13 + queued_at_ms
  4 max_queue_length   integer >= 0 (0: reject at once when nobody is free)
  5 fraction           a number in [0, 1) drawn by the caller (random strategy; reproducible)
  6 .. 5+T             P(OK) of each agent type for this call's type, aligned with the type ids
Returns one of:
  {'ASSIGNED', agent_id, candidates, idle_since_ms}   e.g. {'ASSIGNED', '0b6f…', '12', '1764097260000'}
  {'QUEUED', position, queue_length}                 e.g. {'QUEUED', '3', '3'}
  {'SATURATED', queue_length}
  {'DUPLICATE'}       the call is already queued
  {'NOEPOCH'}         Redis lost this tenant's state: rebuild, then call again
  {'STALE_TYPES'}     the chosen agent's type is not among the caller's type ids: reload, call again
Invariant: an agent is handed at most one call (it leaves the idle sets in the same step); a queued
call is in the queue exactly once. Arguments are checked before the first write.
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 5 + T then return redis.error_reply('BADARGS claim expects 5 + T arguments') end
local call_id, strategy = arg(1), arg(2)
local queue_score, max_len, fraction = tonumber(arg(3)), tonumber(arg(4)), tonumber(arg(5))
if call_id == '' or not VALID_STRATEGY[strategy] or not queue_score or not max_len or max_len < 0
  or not fraction or fraction < 0 or fraction >= 1 then
  return redis.error_reply('BADARGS claim')
end
local p_ok = {}
for i = 1, T do
  local p = tonumber(arg(5 + i))
  if not p then return redis.error_reply('BADARGS claim p_ok') end
  p_ok[ARGV[1 + i]] = p
end
if redis.call('ZSCORE', QUEUE, call_id) then return {'DUPLICATE'} end

local candidates = redis.call('ZCARD', IDLE)
if candidates > 0 then
  local agent_id = pick_agent(strategy, fraction, p_ok)
  if agent_id then
    if not TYPE_KEY[redis.call('HGET', AGENT_TYPE, agent_id) or ''] then return {'STALE_TYPES'} end
    local score = redis.call('ZSCORE', IDLE, agent_id)
    hold(agent_id, call_id)
    return {'ASSIGNED', agent_id, tostring(candidates), score}
  end
end

local queued = redis.call('ZCARD', QUEUE)
if queued >= max_len then
  return {'SATURATED', tostring(queued)}
end
redis.call('ZADD', QUEUE, queue_score, call_id)
return {'QUEUED', tostring(redis.call('ZRANK', QUEUE, call_id) + 1), tostring(queued + 1)}
