-- wrk script: POST /webhook with a different pre-signed body on every request.
--
-- Environment (read in every Lua state wrk creates):
--   BENCH_BODIES      file of `signature<TAB>body` lines, loaded in init(), before the timed
--                     window when wrk runs one thread (wrk starts timing after thread 0's init)
--   BENCH_BODY_LIMIT  load at most this many lines of it (default: all)
--   BENCH_RESULT      file done() writes the outcome to (one JSON object)
--   BENCH_DUP_EVERY   0: every request sends a new body. N > 0: every N-th request resends a
--                     body already sent in this run (2 means half the requests are duplicates)
--   BENCH_SLICE_S     0: off. S > 0: also time each answer here, from sending the request to
--                     the answer (the span wrk times), and report responses, non-2xx and
--                     latency percentiles per S seconds of the run, by when the answer came.
--                     Needs every request in flight to carry a distinct body index, so not
--                     with BENCH_DUP_EVERY.
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

-- Per-slice timing (BENCH_SLICE_S): a monotonic microsecond clock through LuaJIT's FFI (wrk
-- gives Lua none finer than a second).
-- Read here, not in init(): done() runs in wrk's main Lua state, where init() never runs.
local slice_us = (tonumber(os.getenv("BENCH_SLICE_S") or "0") or 0) * 1000000
local now_us
local started_us          -- when the first request was sent
local sent_at = {}        -- sent_at[index + 1] = when that body's request was sent
-- One number per answer: slice * SLICE_KEY + latency_us. wrk copies only flat tables from a
-- thread's state to done()'s (nested ones crash it), hence one flat list.
local SLICE_KEY = 1e10
slice_answers = {}
slice_non_2xx = {}        -- slice_non_2xx[slice] = count, slices from 0
last_answer_us = 0        -- when the last answer came, from started_us

local function start_clock()
   local ok, ffi = pcall(require, "ffi")
   if not ok then
      error("BENCH_SLICE_S needs wrk built with LuaJIT (for its FFI clock)")
   end
   ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clock_id, bench_timespec *tp);
   ]]
   local ts = ffi.new("bench_timespec")
   local CLOCK_MONOTONIC = 1
   now_us = function()
      ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
      return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
   end
end

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
   if slice_us > 0 then
      if dup_every > 0 then
         error("BENCH_SLICE_S cannot be used with BENCH_DUP_EVERY")
      end
      start_clock()
   end
   math.randomseed(20250115)
   -- The harness waits for this line: wrk starts its clock right after init() returns.
   io.stderr:write(string.format("loaded %d bodies\n", body_count))
end

local function post(index)
   if slice_us > 0 then
      -- wrk sends what request() returns right away and starts its own timer then.
      local now = now_us()
      started_us = started_us or now
      sent_at[index + 1] = now
   end
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
   if slice_us > 0 and index ~= nil and sent_at[index + 1] then
      local now = now_us()
      local slice = math.floor((now - started_us) / slice_us)
      slice_answers[#slice_answers + 1] = slice * SLICE_KEY + (now - sent_at[index + 1])
      sent_at[index + 1] = nil
      if status < 200 or status > 299 then
         slice_non_2xx[slice] = (slice_non_2xx[slice] or 0) + 1
      end
      last_answer_us = now - started_us
   end
end

-- `{"start_s": .., "end_s": .., "responses": .., "non_2xx": .., "p50_us": .., "p99_us": ..}`
-- for each slice of one thread; the last slice ends at the last answer, and one shorter than
-- half a slice is counted with the slice before it.
local function slices_json(thread)
   local answers = thread:get("slice_answers")
   local non_2xx = thread:get("slice_non_2xx")
   local last = thread:get("last_answer_us")
   local count = math.max(1, math.ceil(last / slice_us))
   if count > 1 and last - (count - 1) * slice_us < slice_us / 2 then
      count = count - 1
   end
   local latencies = {}
   for slice = 1, count do
      latencies[slice] = {}
   end
   local merged_non_2xx = {}
   for _, answer in ipairs(answers) do
      local slice = math.min(math.floor(answer / SLICE_KEY), count - 1) + 1
      local list = latencies[slice]
      list[#list + 1] = answer % SLICE_KEY
   end
   for slice, n in pairs(non_2xx) do
      local into = math.min(slice, count - 1) + 1
      merged_non_2xx[into] = (merged_non_2xx[into] or 0) + n
   end
   local parts = {}
   for slice = 1, count do
      local list = latencies[slice]
      table.sort(list)
      local function percentile(p)
         if #list == 0 then
            return 0
         end
         return list[math.max(1, math.ceil(#list * p / 100))]
      end
      local start = (slice - 1) * slice_us
      local finish = slice == count and last or slice * slice_us
      parts[#parts + 1] = string.format(
         '{"start_s": %.3f, "end_s": %.3f, "responses": %d, "non_2xx": %d, ' ..
         '"p50_us": %d, "p99_us": %d}',
         start / 1e6, finish / 1e6, #list, merged_non_2xx[slice] or 0, percentile(50),
         percentile(99))
   end
   return "[" .. table.concat(parts, ", ") .. "]"
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
   if slice_us > 0 then
      out:write(', "slices": ' .. slices_json(threads[1]))
   end
   out:write(', "acked": [' .. table.concat(acked_indices, ",") .. ']}\n')
   out:close()
end
