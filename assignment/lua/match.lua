--[[ match.lua: repair step. While an agent idles and a call waits (possible only after an undone
claim or a rebuild), hand the queue's head to the longest-idle agent. One pair per call.

KEYS, ARGV[1 .. 1+T]: the common layout of _lib.lua.
Arguments: none.
Returns {'ASSIGNED', call_id, agent_id, candidates, idle_since_ms, queue_score}, {'NONE'}, {'STALE_TYPES'} (reload the type ids) or {'NOEPOCH'}.
Invariant: the one that _lib.lua states; this script restores it one pair at a time.
]]
if epoch_missing() then return {'NOEPOCH'} end
if nargs() ~= 0 then return redis.error_reply('BADARGS match expects no arguments') end
local candidates = redis.call('ZCARD', IDLE)
if candidates == 0 or redis.call('ZCARD', QUEUE) == 0 then return {'NONE'} end
local agent_id, score = pick_longest_idle(IDLE)
if not TYPE_KEY[redis.call('HGET', AGENT_TYPE, agent_id) or ''] then return {'STALE_TYPES'} end
local head = redis.call('ZPOPMIN', QUEUE)
hold(agent_id, head[1])
return {'ASSIGNED', head[1], agent_id, tostring(candidates), score, head[2]}
