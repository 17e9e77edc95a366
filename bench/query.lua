-- wrk script: paced GET requests to one query endpoint, run beside an ingest load.
--
-- Environment:
--   BENCH_QUERY_PATH     path to request; `{from}` in it is replaced by a sender number
--                        (URL-encoded), taking the next one from BENCH_SENDERS each time
--   BENCH_SENDERS        file with one sender number per line (only needed with `{from}`)
--   BENCH_QUERY_DELAY_MS pause before each request on a connection (not counted in latency)
--   BENCH_RESULT         file done() writes the outcome to (one JSON object)

local path_template = os.getenv("BENCH_QUERY_PATH") or "/stats"
local delay_ms = tonumber(os.getenv("BENCH_QUERY_DELAY_MS") or "0")
local senders = {}
local next_sender = 0

statuses = {}

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   if path_template:find("{from}", 1, true) then
      for line in io.lines(os.getenv("BENCH_SENDERS")) do
         table.insert(senders, (line:gsub("%+", "%%2B")))
      end
   end
end

function request()
   local path = path_template
   if #senders > 0 then
      next_sender = next_sender % #senders + 1
      path = path:gsub("{from}", (senders[next_sender]:gsub("%%", "%%%%")))
   end
   return wrk.format("GET", path)
end

function delay()
   return delay_ms
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
   local out = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
   local e = summary.errors
   local parts = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         table.insert(parts, string.format('"%s": %d', status, count))
      end
   end
   out:write(string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
      '"statuses": {%s}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
   out:close()
end
