-- wrk script: POSTs seed 004's student payload as JSON. FP_BENCH_BODY selects the body:
-- "valid" (the seed payload with age and cgpa corrected; roll varies so every partition
-- gets traffic) or "invalid" (the seed payload as it was posted: age 10.11 fails the
-- form, so the answer is 422 without touching Kafka).
local kind = os.getenv("FP_BENCH_BODY") or "valid"
-- FP_BENCH_PACE_MS: each connection waits this long after an answer before its next
-- submission (a person thinking), so the offered rate is about connections / pace.
local pace = tonumber(os.getenv("FP_BENCH_PACE_MS") or "0")
-- FP_BENCH_FORMS=N with FP_BENCH_FORM_PREFIX=P: each submission goes to form P<k>, k
-- taking every value 0..N-1 in turn (many forms served by one ingest).
local nforms = tonumber(os.getenv("FP_BENCH_FORMS") or "0")
local prefix = os.getenv("FP_BENCH_FORM_PREFIX") or ""
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

local invalid = '{"name":"Saurabh raj","roll":"99999","university":"BCE","cgpa":"8.04",' ..
                '"gender":"F","age":"10.11","email":"kumarsaurabhraj.sr@gmail.com","mobile":"7004465984"}'

function init(args)
  counter = math.random(0, 1000000)
end

request = function()
  if kind == "invalid" then
    return wrk.format(nil, nil, nil, invalid)
  end
  counter = counter + 1
  local body = '{"name":"Saurabh raj","roll":"' .. (counter % 100000) .. '","university":"BCE","cgpa":8.04,' ..
               '"gender":"F","age":21,"email":"kumarsaurabhraj.sr@gmail.com","mobile":"7004465984"}'
  local path = nil
  if nforms > 0 then
    path = "/forms/" .. prefix .. (counter % nforms)
  end
  return wrk.format(nil, path, nil, body)
end

if pace > 0 then
  delay = function()
    return pace
  end
end

done = function(summary, latency, requests)
  io.write(string.format("FPRESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
