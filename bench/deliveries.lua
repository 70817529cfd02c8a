-- wrk script of the webhook benchmark (bench/peers.py): every request is a distinct, signed
-- first delivery read from a file prepared ahead ("<hex signature> <body>" per line), sent
-- with "Connection: close" (no keep-alive). Arguments: <file> <path>.
-- When the file runs out the thread stops (the run is then shorter than asked; bench/peers.py
-- sizes the file so that it does not happen, and reports it if it does).
local prepared = {}
local sent = 0
answered = 0
statuses = {}

function init(args)
  local target = args[2]
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%x+) (.*)$")
    prepared[#prepared + 1] = wrk.format("POST", target, {
      ["Content-Type"] = "application/json",
      ["Ittybit-Signature"] = signature,
      ["Connection"] = "close",
    }, body)
  end
  prepared_count = #prepared
end

function request()
  sent = sent + 1
  if sent > #prepared then
    wrk.thread:stop()
    return prepared[#prepared]  -- never answered: the thread is stopping
  end
  return prepared[sent]
end

function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      parts[#parts + 1] = string.format('"%s": %d', status, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {"duration_us": %d, "requests": %d, "prepared": %d, "statuses": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.duration, summary.requests, threads[1]:get("prepared_count"), table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
