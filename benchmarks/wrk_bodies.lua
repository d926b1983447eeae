-- wrk script of the HTTP benchmark: POST request bodies from a file, each one unique.
--
--   wrk -t1 -c32 -d10s -s benchmarks/wrk_bodies.lua http://127.0.0.1:PORT/collect -- BODIES [DELAY_MS [TAG]]
--
-- BODIES has one JSON body per line (written by benchmarks/bench_http.py); every "@R@"
-- in a line is replaced by "<TAG><thread>x<request number>", so event ids, user ids and
-- sessions are new in every request: messageIds never repeat and no identify is
-- de-duplicated, so each event becomes exactly one Segment message.
-- DELAY_MS (optional) makes each connection wait that long after a response before
-- its next request: a paced, closed-loop rate (wrk2 is not packaged by Debian); 0: none.
-- TAG (optional) keeps the values of several wrk instances apart.
-- done() prints one line "WRKJSON {...}" with the counts and latency percentiles (us).

local threads = {}
local bodies = {}
local counter = 0
local tag = ""

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

local function split(line, marker)
   local parts = {}
   local start = 1
   while true do
      local first, last = string.find(line, marker, start, true)
      if not first then
         table.insert(parts, string.sub(line, start))
         return parts
      end
      table.insert(parts, string.sub(line, start, first - 1))
      start = last + 1
   end
end

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         table.insert(bodies, split(line, "@R@"))
      end
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   local pause = tonumber(args[2] or "")
   if pause and pause > 0 then
      delay = function() return pause end
   end
   tag = args[3] or ""
end

function request()
   counter = counter + 1
   local parts = bodies[(counter - 1) % #bodies + 1]
   return wrk.format(nil, nil, nil, table.concat(parts, tag .. id .. "x" .. counter))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
         .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
