--[[ nowTs(): the server's clock as float seconds with microseconds, e.g. "1715990400.123456". ]]
local function nowTs()
  local t = redis.call('TIME')
  return string.format('%d.%06d', t[1], t[2])
end
