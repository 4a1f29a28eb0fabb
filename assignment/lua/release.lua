--[[ release.lua: an agent becomes free (call over without wrap-up, wrap-up over, or status set to
AVAILABLE). Atomically: it takes the next waiting call, or joins the idle sets.

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments (arg(i)):
  1 agent_id
  2 type_id            the agent's type (must be one of the type ids)
  3 idle_since_ms      its new idle clock, used only if it joins the idle sets
  4 expected_call_id   the call it is finishing, or '' when it holds none
Returns one of:
  {'ASSIGNED', call_id, queue_score}   it took the queue's head, e.g. {'ASSIGNED', '9c1e…', '90000001764097260000'}
  {'IDLE'}                             it joined the idle sets with idle_since_ms
  {'ALREADY', idle_since_ms}           it was already AVAILABLE: its idle clock is kept, nothing written
  {'MISMATCH', status, call_id}        it holds a call other than expected_call_id (or any call when
                                       none was expected): nothing written
  {'NOEPOCH'}, {'STALE_TYPES'}         type_id is not among the type ids: reload them, call again
Invariant: a free agent never idles while a call waits; an available agent's idle clock never moves.
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 4 then return redis.error_reply('BADARGS release expects 4 arguments') end
local agent_id, type_id, score, expected = arg(1), arg(2), tonumber(arg(3)), arg(4)
if agent_id == '' or not score then return redis.error_reply('BADARGS release') end
if not TYPE_KEY[type_id] then return {'STALE_TYPES'} end
local status = redis.call('HGET', STATUS, agent_id)
local holding = redis.call('HGET', AGENT_CALL, agent_id)
if holding and holding ~= expected then
  return {'MISMATCH', status or '', holding}
end
if not holding and status == 'AVAILABLE' then
  -- Already free (e.g. a rebuild saw the call end first): keep its place in the line.
  return {'ALREADY', redis.call('ZSCORE', IDLE, agent_id) or ''}
end

redis.call('HSET', AGENT_TYPE, agent_id, type_id)
local head = redis.call('ZPOPMIN', QUEUE)
if #head > 0 then
  hold(agent_id, head[1])
  return {'ASSIGNED', head[1], head[2]}
end
join_idle(agent_id, type_id, score)
return {'IDLE'}
