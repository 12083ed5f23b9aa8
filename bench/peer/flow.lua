-- The code flow with an SSO session, one connection per thread: GET the authorization URL (the
-- Cookie carries the session), take the code from the redirect, POST it to the token endpoint.
-- wrk -t16 -c16 ... -s flow.lua URL -- AUTHORIZE_PATH COOKIE TOKEN_PATH BASIC BODY_WITH_CODE_PLACEHOLDER
local authorize, exchange, template, code
flows, failures = 0, 0
function init(args)
  authorize = wrk.format("GET", args[1], { Cookie = args[2] })
  exchange = { path = args[3], headers = { Authorization = args[4],
    ["Content-Type"] = "application/x-www-form-urlencoded" } }
  template = args[5]
end
function request()
  if code then return wrk.format("POST", exchange.path, exchange.headers, (template:gsub("CODE", code))) end
  return authorize
end
function response(status, headers, body)
  if code then
    if status == 200 then flows = flows + 1 else failures = failures + 1 end
    code = nil
  else
    local location = headers["Location"] or headers["location"] or ""
    code = location:match("[?&]code=([^&]+)")
    if not code then failures = failures + 1 end
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary)
  local total, failed = 0, 0
  for _, thread in ipairs(threads) do
    total, failed = total + thread:get("flows"), failed + thread:get("failures")
  end
  io.write(string.format("Flows/sec: %.2f\nFailed flows: %d\n", total / summary.duration * 1e6, failed))
end
