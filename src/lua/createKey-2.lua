--[[
  Stores a new API key record, unless one with that id exists (a random id collided, or a
  bootstrap key was installed before): record, index entry and expiry together, so no partial
  record is ever seen.

  Input:
    KEYS[1]  API key record hash (agentmem:apikey:<id>)
    KEYS[2]  set of API key ids (agentmem:apikeys)
    ARGV[1]  key id
    ARGV[2]  Unix time (s) at which the record is dropped (expiry + grace), or '' for never
    ARGV[3..] field, value, field, value, ... of the record

  Output:
    1  stored
    0  the id exists: nothing written
]]

local keyRecord, index = KEYS[1], KEYS[2]
if redis.call('EXISTS', keyRecord) == 1 then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSET', keyRecord, ARGV[i], ARGV[i + 1])
end
redis.call('SADD', index, ARGV[1])
if ARGV[2] ~= '' then redis.call('EXPIREAT', keyRecord, tonumber(ARGV[2])) end
return 1
