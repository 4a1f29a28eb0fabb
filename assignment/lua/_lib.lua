--[[ _lib.lua: shared prelude, prepended by assignment/engine.py to every script (not a script itself).

Layout common to every script:
  KEYS[1] epoch        STRING  present while Redis holds the tenant's state
  KEYS[2] idle         ZSET    agent_id -> idle_since_ms (longest idle = lowest score; ties: lower id)
  KEYS[3] idle_lex     ZSET    agent_id -> 0 (available agents in id order, for round robin)
  KEYS[4] queue        ZSET    call_id -> (9 - priority) * 1e13 + queued_at_ms (next call = lowest)
  KEYS[5] agent_status HASH    agent_id -> AVAILABLE | BUSY | WRAP_UP | BREAK | OFFLINE
  KEYS[6] agent_call   HASH    agent_id -> call_id held
  KEYS[7] agent_type   HASH    agent_id -> agent type id
  KEYS[8] rr_last      STRING  agent id last chosen by round robin
  KEYS[9 .. 8+T]       ZSET    idle_t:<type id> -> idle agents of one type (best_conversion)
  ARGV[1]              T, the number of agent types
  ARGV[2 .. 1+T]       the agent type ids, aligned with KEYS[9 .. 8+T]
  ARGV[2+T ..]         the script's own arguments, read with arg(i)

Invariant kept by all scripts together: an agent is in idle, idle_lex and its idle_t set exactly when
its status is AVAILABLE; an agent in agent_call has status BUSY; the queue is non-empty only while
no agent is idle (a freed agent always takes the queue's head first).
]]
local EPOCH, IDLE, IDLE_LEX, QUEUE, STATUS, AGENT_CALL, AGENT_TYPE, RR_LAST =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local T = tonumber(ARGV[1])
if T == nil or T < 0 or #KEYS ~= 8 + T then
  return redis.error_reply('BADARGS type count does not match KEYS')
end
local TYPE_KEY = {}
for i = 1, T do
  TYPE_KEY[ARGV[1 + i]] = KEYS[8 + i]
end

local function arg(i)
  return ARGV[1 + T + i]
end

local function nargs()
  return #ARGV - 1 - T
end

local function epoch_missing()
  return redis.call('EXISTS', EPOCH) == 0
end

local function leave_idle(agent_id)
  redis.call('ZREM', IDLE, agent_id)
  redis.call('ZREM', IDLE_LEX, agent_id)
  local type_id = redis.call('HGET', AGENT_TYPE, agent_id)
  if type_id and TYPE_KEY[type_id] then
    redis.call('ZREM', TYPE_KEY[type_id], agent_id)
  end
end

local function join_idle(agent_id, type_id, score)
  redis.call('ZADD', IDLE, score, agent_id)
  redis.call('ZADD', IDLE_LEX, 0, agent_id)
  redis.call('ZADD', TYPE_KEY[type_id], score, agent_id)
  redis.call('HSET', AGENT_TYPE, agent_id, type_id)
  redis.call('HSET', STATUS, agent_id, 'AVAILABLE')
  redis.call('HDEL', AGENT_CALL, agent_id)
end

local function hold(agent_id, call_id)
  leave_idle(agent_id)
  redis.call('HSET', STATUS, agent_id, 'BUSY')
  redis.call('HSET', AGENT_CALL, agent_id, call_id)
end

-- The longest-idle agent: lowest score, ties to the lower id (ZSET order). Returns id, score.
local function pick_longest_idle(key)
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #head == 0 then return nil, nil end
  return head[1], head[2]
end

-- Chooses an available agent; p_ok maps type id -> P(OK) for best_conversion. Returns id or nil.
local function pick_agent(strategy, fraction, p_ok)
  if strategy == 'longest_idle' then
    return (pick_longest_idle(IDLE))
  elseif strategy == 'best_conversion' then
    local best_id, best_p, best_score = nil, -1, nil
    for type_id, key in pairs(TYPE_KEY) do
      local p = p_ok[type_id] or 0
      if p >= best_p then
        local id, score = pick_longest_idle(key)
        if id then
          score = tonumber(score)
          if p > best_p or score < best_score or (score == best_score and id < best_id) then
            best_id, best_p, best_score = id, p, score
          end
        end
      end
    end
    return best_id
  elseif strategy == 'round_robin' then
    local last = redis.call('GET', RR_LAST)
    local nxt = {}
    if last then
      nxt = redis.call('ZRANGE', IDLE_LEX, '(' .. last, '+', 'BYLEX', 'LIMIT', 0, 1)
    end
    if #nxt == 0 then
      nxt = redis.call('ZRANGE', IDLE_LEX, 0, 0)
    end
    if #nxt == 0 then return nil end
    redis.call('SET', RR_LAST, nxt[1])
    return nxt[1]
  elseif strategy == 'random' then
    local n = redis.call('ZCARD', IDLE)
    if n == 0 then return nil end
    local index = math.floor(fraction * n)
    if index >= n then index = n - 1 end
    return redis.call('ZRANGE', IDLE, index, index)[1]
  end
  return nil
end

local VALID_STRATEGY = {longest_idle = true, best_conversion = true, round_robin = true, random = true}
