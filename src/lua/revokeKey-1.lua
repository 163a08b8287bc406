--[[
  Revokes an API key: marks its record revoked, so every later request with it is refused. The
  record stays (a tombstone: `keys list` shows it, and AGENTMEM_BOOTSTRAP_ADMIN_KEY does not
  re-install a revoked bootstrap key on the next start). A key whose record is gone (it expired
  and its grace TTL passed) is not re-created: HSET on a missing key would leave a partial record.

  Input:
    KEYS[1]  API key record hash (agentmem:apikey:<id>)
    ARGV[1]  revoked_ts (float seconds)

  Output:
    1  revoked now
    0  no such key
    2  already revoked (nothing changed)
]]

local keyRecord = KEYS[1]
if redis.call('EXISTS', keyRecord) == 0 then return 0 end
if redis.call('HGET', keyRecord, 'revoked') == '1' then return 2 end
redis.call('HSET', keyRecord, 'revoked', '1', 'revoked_ts', ARGV[1])
return 1
