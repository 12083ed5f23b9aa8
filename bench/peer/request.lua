-- One fixed request: wrk ... -s request.lua URL -- METHOD BODY ["Header: value" ...]
local req
function init(args)
  local headers = {}
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  if args[2] ~= "" then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  req = wrk.format(args[1], nil, headers, args[2] ~= "" and args[2] or nil)
end
function request() return req end
