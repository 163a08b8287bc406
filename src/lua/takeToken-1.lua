--[[
  A token bucket: `capacity` tokens, refilled continuously at `rate` per second, on the server's
  clock (every API process shares one bucket per subject, whatever their clocks say). A take
  succeeds when a whole token is there. The bucket expires once it would be full again, so idle
  subjects leave nothing behind.

  Input:
    KEYS[1]  bucket hash (agentmem:ratelimit:<kind>:<subject>): fields tokens, ts (ms)
    ARGV[1]  capacity (tokens, >= 1)
    ARGV[2]  rate (tokens per second, > 0)

  Output:
    { 1, 0 }               allowed (a token was there and is taken)
    { 0, retry_after_ms }  refused: no whole token; one is there again after retry_after_ms
]]

local bucket = KEYS[1]
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])

local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil or ts == nil then
  tokens, ts = capacity, nowMs
end
tokens = math.min(capacity, tokens + math.max(0, nowMs - ts) * rate / 1000)

if tokens < 1 then
  return { 0, math.ceil((1 - tokens) * 1000 / rate) }
end
tokens = tokens - 1
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(nowMs))
redis.call('PEXPIRE', bucket, math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return { 1, 0 }
