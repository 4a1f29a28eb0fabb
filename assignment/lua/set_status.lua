--[[ set_status.lua: an agent stops taking calls (OFFLINE, BREAK, WRAP_UP) or is removed (REMOVED).

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments (arg(i)):
  1 agent_id
  2 status             OFFLINE | BREAK | WRAP_UP | REMOVED
  3 type_id            the agent's type (must be one of the type ids)
  4 expected_call_id   the call it is finishing, or '' when it must hold none
Returns one of:
  {'OK', previous_status}          e.g. {'OK', 'AVAILABLE'}
  {'BUSY', call_id}                it holds a call other than expected_call_id: nothing written
  {'NOEPOCH'}, {'STALE_TYPES'}     type_id is not among the type ids: reload them, call again
Invariant: an agent that is not AVAILABLE is in no idle set; a busy agent is never taken off its call
by this script (the caller ends the call first and passes its id).
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 4 then return redis.error_reply('BADARGS set_status expects 4 arguments') end
local agent_id, status, type_id, expected = arg(1), arg(2), arg(3), arg(4)
local VALID = {OFFLINE = true, BREAK = true, WRAP_UP = true, REMOVED = true}
if agent_id == '' or not VALID[status] then return redis.error_reply('BADARGS set_status') end
if not TYPE_KEY[type_id] then return {'STALE_TYPES'} end
local holding = redis.call('HGET', AGENT_CALL, agent_id)
if holding and holding ~= expected then
  return {'BUSY', holding}
end
local previous = redis.call('HGET', STATUS, agent_id) or ''
leave_idle(agent_id)
redis.call('ZREM', TYPE_KEY[type_id], agent_id)
redis.call('HDEL', AGENT_CALL, agent_id)
if status == 'REMOVED' then
  redis.call('HDEL', STATUS, agent_id)
  redis.call('HDEL', AGENT_TYPE, agent_id)
else
  redis.call('HSET', STATUS, agent_id, status)
  redis.call('HSET', AGENT_TYPE, agent_id, type_id)
end
return {'OK', previous}
