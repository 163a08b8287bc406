--[[
  logEvent(eventsKey, maxLen, ttl, action, detail, ts)
  Appends one entry to a thread's event log in the reference demos' field order, capped with
  MAXLEN ~, and gives the stream the thread's TTL: a thread id any client can invent must not leave
  a stream behind forever. Returns the entry id.
]]
local function logEvent(eventsKey, maxLen, ttl, action, detail, ts)
  local id = redis.call('XADD', eventsKey, 'MAXLEN', '~', maxLen, '*', 'action', action, 'detail', detail, 'ts', ts)
  redis.call('EXPIRE', eventsKey, ttl)
  return id
end
