-- wrk script of benchmarks/register.py: posts the registration form, each time with a new
-- address, until this thread has had LIMIT responses.
--   wrk ... -s register.lua URL -- PATH CSRF_TOKEN COOKIE PREFIX LIMIT WORKSHOPS
-- wrk's main thread sleeps for the whole -d duration even when every thread has stopped, so
-- each thread times itself and says "stopped" on stdout; register.py then interrupts wrk.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("number", #threads)
end

function init(args)
  path, token, cookie, prefix = args[1], args[2], args[3], args[4]
  limit, workshops = tonumber(args[5]), tonumber(args[6])
  sent, responses, not_redirected = 0, 0, 0
  started, finished = nil, nil
end

local function escaped(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  started = started or now()
  sent = sent + 1
  local body = table.concat({
    "csrf_token=" .. escaped(token),
    "first_name=Participant",
    "last_name=" .. number .. "-" .. sent,
    "email=" .. escaped(prefix .. "-" .. number .. "-" .. sent .. "@example.org"),
    "organisation=Benchmark",
    "workshop=" .. (1 + (number + sent) % workshops),
    "lunch=yes",
    "dietary=",
    "consent=y",
  }, "&")
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
  }, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 300 or status >= 400 then
    not_redirected = not_redirected + 1
  end
  if responses == limit then
    finished = now()
    io.write("stopped\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local first, last, count, not_3xx = nil, nil, 0, 0
  for _, thread in ipairs(threads) do
    local started, finished = thread:get("started"), thread:get("finished")
    if started and (first == nil or started < first) then first = started end
    if finished and (last == nil or finished > last) then last = finished end
    count = count + thread:get("responses")
    not_3xx = not_3xx + thread:get("not_redirected")
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"responses": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"not_3xx": %d, "socket_errors": %d}\n',
    count, (last or 0) - (first or 0), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, not_3xx,
    errors.connect + errors.read + errors.write + errors.timeout))
end
