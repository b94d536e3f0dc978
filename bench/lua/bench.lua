-- wrk script of the benchmark harness (bench/loadgen.py passes the arguments after --).
--   get  FILE PREFIX SUFFIX      GET PREFIX..id..SUFFIX, ids read from FILE (one a line)
--   post FILE PATH NONCE IDEM    POST PATH, form body: first line of FILE, then lat/long from
--                                the other lines ("lat long"); IDEM=1 adds a unique
--                                Idempotency-Key (NONCE-thread-counter) to every request
--   plain                        the URL as given
--   header NAME VALUE            the URL as given, with one request header (e.g. a
--                                conditional GET's If-None-Match)
-- done() prints one line "BENCHJSON {...}" with the counts and latency percentiles (us).

local mode = "plain"
local items = {}
local count = 0
local prefix, suffix, path, nonce, idem, body_head
local thread_id = 0
local counter = 0

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function read_lines(file)
  local lines = {}
  for line in io.lines(file) do
    if line ~= "" then table.insert(lines, line) end
  end
  return lines
end

function init(args)
  mode = args[1] or "plain"
  thread_id = tonumber(tid) or 0
  if mode == "get" then
    items = read_lines(args[2])
    prefix, suffix = args[3], args[4] or ""
  elseif mode == "post" then
    local lines = read_lines(args[2])
    body_head = table.remove(lines, 1)
    items = lines
    path, nonce, idem = args[3], args[4], args[5] == "1"
  elseif mode == "header" then
    wrk.headers[args[2]] = args[3]
  end
  count = #items
  -- Different threads start at different places in the list.
  counter = thread_id * 7919
end

function request()
  if mode == "get" then
    counter = counter + 1
    return wrk.format("GET", prefix .. items[(counter % count) + 1] .. suffix)
  elseif mode == "post" then
    counter = counter + 1
    local lat, lon = items[(counter % count) + 1]:match("^(%S+)%s+(%S+)$")
    local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    if idem then
      headers["Idempotency-Key"] = nonce .. "-" .. thread_id .. "-" .. counter
    end
    local body = body_head .. "&lat=" .. lat .. "&long=" .. lon
    return wrk.format("POST", path, headers, body)
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
