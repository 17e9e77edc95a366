-- wrk script: POST /webhook with a different pre-signed body on every request.
--
-- Environment (read in every Lua state wrk creates):
--   BENCH_BODIES      file of `signature<TAB>body` lines, loaded in init(), before the timed
--                     window when wrk runs one thread (wrk starts timing after thread 0's init)
--   BENCH_BODY_LIMIT  load at most this many lines of it (default: all)
--   BENCH_RESULT      file done() writes the outcome to (one JSON object)
--   BENCH_DUP_EVERY   0: every request sends a new body. N > 0: every N-th request resends a
--                     body already sent in this run (2 means half the requests are duplicates)
--
-- Each request carries `X-Request-ID: <body index>`. The service echoes that header, so
-- response() knows which body an answer belongs to even though responses on different
-- connections arrive in any order; it records the indices that were answered 200.
-- The harness can only run with one wrk thread (`-t 1`): indices are not split across threads.

local bodies, signatures = {}, {}
local body_count = 0
local dup_every = 0
local sent = 0 -- requests built so far

-- Globals: read back by done() through thread:get().
issued = 0          -- distinct bodies handed out: indices 0 .. issued-1
duplicates_sent = 0 -- requests that resent an earlier body
acked = {}          -- acked[index + 1] = true once that body was answered 200
statuses = {}       -- statuses["503"] = count
unlabelled = 0      -- responses without the echoed X-Request-ID
exhausted = 0       -- 1 when the file ran out of bodies before the run ended

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BENCH_BODIES")
   local limit = tonumber(os.getenv("BENCH_BODY_LIMIT") or "") or math.huge
   for line in io.lines(path) do
      if body_count >= limit then
         break
      end
      local tab = line:find("\t", 1, true)
      body_count = body_count + 1
      signatures[body_count] = line:sub(1, tab - 1)
      bodies[body_count] = line:sub(tab + 1)
   end
   dup_every = tonumber(os.getenv("BENCH_DUP_EVERY") or "0")
   math.randomseed(20250115)
   -- The harness waits for this line: wrk starts its clock right after init() returns.
   io.stderr:write(string.format("loaded %d bodies\n", body_count))
end

local function post(index)
   return wrk.format("POST", "/webhook", {
      ["Content-Type"] = "application/json",
      ["X-Signature"] = signatures[index + 1],
      ["X-Request-ID"] = tostring(index),
   }, bodies[index + 1])
end

function request()
   sent = sent + 1
   if dup_every > 0 and issued > 1 and sent % dup_every == 0 then
      -- Resend an id already sent. Half the time one of the last 512 (likely still in flight
      -- or in the same write batch, like a provider retrying fast), else any earlier one.
      -- Index 0 is left out: it is the body wrk builds to validate the script, never sent.
      duplicates_sent = duplicates_sent + 1
      local oldest = 1
      if math.random() < 0.5 then
         oldest = math.max(1, issued - 512)
      end
      return post(math.random(oldest, issued - 1))
   end
   if issued >= body_count then
      -- Never resend a body as if it were new: stop, and let the harness report it.
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/health/live")
   end
   issued = issued + 1
   return post(issued - 1)
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   local id = headers["x-request-id"] or headers["X-Request-ID"]
   local index = id and tonumber(id)
   if index == nil then
      unlabelled = unlabelled + 1
   elseif status == 200 then
      acked[index + 1] = true
   end
end

function done(summary, latency, requests)
   local out = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
   local e = summary.errors
   out:write(string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
      '"threads": %d',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.timeout, #threads))
   local totals = {issued = 0, duplicates_sent = 0, unlabelled = 0, exhausted = 0}
   local all_statuses, acked_indices = {}, {}
   for _, thread in ipairs(threads) do
      for name in pairs(totals) do
         totals[name] = totals[name] + thread:get(name)
      end
      for status, count in pairs(thread:get("statuses")) do
         all_statuses[status] = (all_statuses[status] or 0) + count
      end
      for index in pairs(thread:get("acked")) do
         table.insert(acked_indices, index - 1)
      end
   end
   for name, value in pairs(totals) do
      out:write(string.format(', "%s": %d', name, value))
   end
   local parts = {}
   for status, count in pairs(all_statuses) do
      table.insert(parts, string.format('"%s": %d', status, count))
   end
   out:write(', "statuses": {' .. table.concat(parts, ", ") .. '}')
   out:write(', "acked": [' .. table.concat(acked_indices, ",") .. ']}\n')
   out:close()
end
