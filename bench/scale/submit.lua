-- wrk script of bench/scale/run: POSTs to the forms f1..fN (FP_BENCH_FORMS) in turn for
-- the first FP_BENCH_POST_SECONDS of the run, then only GETs the form page until wrk
-- stops, so no submission is in flight (sent, never answered) when it does. Every
-- submission's name is unique in the run and names its form:
--   r<FP_BENCH_ROUND>-t<thread>-<counter>-f<k>
-- so the check afterwards finds each row in the right form's tab, once.
local nforms = tonumber(os.getenv("FP_BENCH_FORMS") or "1")
local round = os.getenv("FP_BENCH_ROUND") or "0"
local post_seconds = tonumber(os.getenv("FP_BENCH_POST_SECONDS") or "10")
local threads = {}
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0      -- submissions sent
  accepted = 0     -- answered 202
  posting = 1      -- 0 once only GETs are sent
  refused = 0      -- submissions answered otherwise (their responses arrive before the GETs')
  started = os.time()
end

request = function()
  if os.time() - started >= post_seconds then
    posting = 0
    return wrk.format("GET", "/forms/f1", nil, nil)
  end
  counter = counter + 1
  local k = (counter + tid) % nforms + 1
  local body = '{"name":"r' .. round .. '-t' .. tid .. '-' .. counter .. '-f' .. k .. '","roll":"' ..
               (counter % 1000000000) .. '"}'
  return wrk.format("POST", "/forms/f" .. k, nil, body)
end

response = function(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  elseif posting == 1 then
    refused = refused + 1
    io.write("submission answered " .. status .. ": " .. string.sub(body, 1, 200) .. "\n")
  end
end

done = function(summary, latency, requests)
  local ok, sent, no = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("accepted")
    sent = sent + t:get("counter")
    no = no + t:get("refused")
  end
  -- wrk calls request() once in its first thread to check the script (the pipeline
  -- depth): that submission is built, never sent
  sent = sent - 1
  io.write(string.format("FPRESULT sent=%d accepted=%d refused=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    sent, ok, no, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
