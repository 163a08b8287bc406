--[[
  Folds one near-duplicate memory into its survivor, atomically: the survivor's hit_count grows
  by the duplicate's hits plus one (the duplicate itself was one more sighting of the fact), the
  survivor keeps the longer remaining TTL (no expiry beats any expiry), the duplicate is deleted,
  and the merge is logged. Either both still exist and the merge happens whole, or nothing changes.

  Input:
    KEYS[1]  survivor memory key      KEYS[2]  duplicate memory key
    KEYS[3]  consolidation log stream
    ARGV[1]  survivor id              ARGV[2]  duplicate id
    ARGV[3]  distance between them    ARGV[4]  log stream MAXLEN ~

  Output:
    hit_count of the survivor after the merge, or ERR.MEMORY_GONE when either memory no longer exists.

  Events: memory_consolidated (detail: JSON {survivor, merged, distance, hit_count, user,
  namespace}; the survivor's scope, so event streams can deliver it only to keys of that scope).
]]
-- @include errors
-- @include nowTs

local survivorKey, duplicateKey, logKey = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', survivorKey) == 0 or redis.call('EXISTS', duplicateKey) == 0 then
  return ERR.MEMORY_GONE
end

local duplicateHits = tonumber(cjson.decode(redis.call('JSON.GET', duplicateKey, '$.hit_count'))[1]) or 0
local hits = tonumber(cjson.decode(redis.call('JSON.NUMINCRBY', survivorKey, '$.hit_count', duplicateHits + 1))[1])

local survivorTtl = redis.call('TTL', survivorKey)
local duplicateTtl = redis.call('TTL', duplicateKey)
if survivorTtl >= 0 then
  if duplicateTtl == -1 then
    redis.call('PERSIST', survivorKey)
  elseif duplicateTtl > survivorTtl then
    redis.call('EXPIRE', survivorKey, duplicateTtl)
  end
end
redis.call('DEL', duplicateKey)

local scope = cjson.decode(redis.call('JSON.GET', survivorKey, '$.user', '$.namespace'))
redis.call('XADD', logKey, 'MAXLEN', '~', ARGV[4], '*', 'action', 'memory_consolidated',
  'detail', cjson.encode({ survivor = ARGV[1], merged = ARGV[2], distance = tonumber(ARGV[3]), hit_count = hits,
    user = scope['$.user'][1], namespace = scope['$.namespace'][1] }),
  'ts', nowTs())
return hits
