-- wrk script for `manage.py bench --compare`: a closed-loop call lifecycle on one connection per
-- thread (run wrk with as many threads as connections). Each thread sends POST /calls and, when the
-- call was assigned (201), POST /calls/{id}/complete, then starts again.
--
-- Environment:
--   KEY            the product's API key (sent as a Bearer token; the floor ignores it)
--   BENCH_SECONDS  stop after this many seconds, but only between two lifecycles: a thread past
--                  the deadline completes the call it holds and then stops itself, so that no
--                  call is left open and no agent held. Without it, the thread runs until wrk's -d.
--   BENCH_DEADLINE the same deadline as an instant of CLOCK_MONOTONIC in seconds (what Python's
--                  time.monotonic() reads on Linux), so that the caller knows when every thread
--                  should be done however long wrk took to start its threads. Wins over BENCH_SECONDS.
--   BENCH_PARK_PORT a port on 127.0.0.1 that accepts connections and ignores them: a thread that
--                  stopped sends the connection wrk opens after its last answer there.
--
-- At the end it prints one line, "BENCH_RESULT " followed by JSON: per thread the lifecycles
-- completed, the seconds it ran, the call it still held and the request it had in flight (when wrk
-- stopped it first); the count of each HTTP status; wrk's socket errors; per-request latency in ms.
-- Needs wrk built with LuaJIT (as Debian's is) for its clock.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local key = os.getenv("KEY") or "none"
local seconds = tonumber(os.getenv("BENCH_SECONDS") or "")
local deadline = tonumber(os.getenv("BENCH_DEADLINE") or "")
local park = nil
local park_port = os.getenv("BENCH_PARK_PORT")
if park_port then
  park = wrk.lookup("127.0.0.1", park_port)[1]
end
local headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
local create_body = '{"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}'
local complete_body = '{"outcome": "OK"}'

-- Globals, read by done() through thread:get().
started, last, lifecycles, created, pending, inflight, stopped = 0, 0, 0, 0, "", "", false
statuses = {}
samples = {}

function init(args)
  started = now()
  last = started
  if not deadline and seconds then
    deadline = started + seconds
  end
end

function request()
  if pending ~= "" then
    inflight = "complete"
    return wrk.format("POST", "/calls/" .. pending .. "/complete", headers, complete_body)
  end
  inflight = "create"
  return wrk.format("POST", "/calls", headers, create_body)
end

function response(status, response_headers, body)
  last = now()
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  if status < 200 or status > 299 then
    if #samples < 3 then
      table.insert(samples, inflight .. " " .. code .. " " .. string.sub(body or "", 1, 200))
    end
  end
  if inflight == "create" and status == 201 then
    local id = body:match('"id"%s*:%s*"([0-9a-fA-F%-]+)"')
    if id then
      pending = id
      created = created + 1
    end
  elseif inflight == "complete" then
    if status == 200 then
      lifecycles = lifecycles + 1
      pending = ""
    elseif status >= 400 and status < 500 then
      pending = "" -- the call cannot be completed by asking again (counted as an error)
    end
  end
  inflight = ""
  if deadline and pending == "" and last >= deadline then
    stopped = true
    if park then
      -- wrk opens the next connection as soon as this answer is read: send it to the parking
      -- listener, not to the server, where an idle connection would hold a worker (a sync worker
      -- serves one connection at a time) that the clients still finishing need.
      wrk.thread.addr = park
    end
    io.write("BENCH_THREAD_DONE\n") -- the caller interrupts wrk once every thread has said so
    io.flush()
    wrk.thread:stop()
  end
end

local function quote(text)
  text = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  -- Bytes above 127 are left as they are; a body cut in the middle of a UTF-8 character is
  -- replaced by the reader.
  return '"' .. text .. '"'
end

function done(summary, latency, requests)
  local out = {}
  local parts = {}
  local total_statuses = {}
  local all_samples = {}
  for _, thread in ipairs(threads) do
    local t_started, t_last = thread:get("started"), thread:get("last")
    table.insert(parts, string.format(
      '{"lifecycles": %d, "created": %d, "seconds": %.6f, "pending": %s, "inflight": %s, "stopped": %s}',
      thread:get("lifecycles"), thread:get("created"), t_last - t_started, quote(thread:get("pending")),
      quote(thread:get("inflight")), tostring(thread:get("stopped"))))
    for code, count in pairs(thread:get("statuses")) do
      total_statuses[code] = (total_statuses[code] or 0) + count
    end
    for _, sample in ipairs(thread:get("samples")) do
      table.insert(all_samples, quote(sample))
    end
  end
  local status_parts = {}
  for code, count in pairs(total_statuses) do
    table.insert(status_parts, string.format('"%s": %d', code, count))
  end
  local e = summary.errors
  table.insert(out, '"threads": [' .. table.concat(parts, ", ") .. "]")
  table.insert(out, '"statuses": {' .. table.concat(status_parts, ", ") .. "}")
  table.insert(out, string.format('"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}',
    e.connect, e.read, e.write, e.timeout))
  table.insert(out, string.format('"requests": %d, "duration_s": %.6f', summary.requests, summary.duration / 1e6))
  table.insert(out, string.format(
    '"latency_ms": {"mean": %.4f, "p50": %.4f, "p90": %.4f, "p99": %.4f, "max": %.4f}',
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  table.insert(out, '"error_samples": [' .. table.concat(all_samples, ", ") .. "]")
  io.write("BENCH_RESULT {" .. table.concat(out, ", ") .. "}\n")
end
