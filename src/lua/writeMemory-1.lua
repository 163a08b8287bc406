--[[
  Writes a long-term memory document and its TTL in one step. JSON.SET has no expiry option and a
  root JSON.SET clears an existing TTL, so doing both from the application would leave a moment
  where the document exists without its TTL (or, after a crash, forever).

  Input:
    KEYS[1]  memory key (agent:mem:<id>)
    ARGV[1]  the document, JSON text
    ARGV[2]  TTL in seconds; 0 = no expiry (semantic memories)

  Output:
    1  written
    0  a document already exists at that key; nothing was changed (redelivered writes are no-ops)
]]
local memoryKey = KEYS[1]
local doc = ARGV[1]
local ttl = tonumber(ARGV[2])

if not redis.call('JSON.SET', memoryKey, '$', doc, 'NX') then
  return 0
end
if ttl > 0 then
  redis.call('EXPIRE', memoryKey, ttl)
end
return 1
