--[[
  Completes the remember stage of one turn, exactly once: either bumps the near-duplicate's
  hit_count or writes the new document with its TTL; records the outcome on the turn, logs it,
  and acknowledges and deletes the remember entry. The turn hash is the marker: a redelivered
  entry (a worker died after this ran, or two workers raced on one entry) finds the outcome
  already recorded and is only acknowledged, so no memory is written twice and none bumped twice.

  Input:
    KEYS[1]  turn hash              KEYS[2]  memory key (the duplicate to bump, or the new one)
    KEYS[3]  event stream           KEYS[4]  remember stream
    KEYS[5]  memory log (changes to long-term memory, followed by open pages)
    ARGV[1]  consumer group         ARGV[2]  remember entry id
    ARGV[3]  mode: bump | write     ARGV[4]  document JSON (write)
    ARGV[5]  document TTL in seconds, 0 = none (write)
    ARGV[6]  outcome JSON ({id, deduped, existing_distance, kind}), stored as the turn's memory
    ARGV[7]  remember_ms            ARGV[8]  role
    ARGV[9]  event detail (`wrote <id> as <kind>` or `deduped onto <id>`)
    ARGV[10] event stream MAXLEN ~  ARGV[11] channel announcing finished turns
    ARGV[12] turn_id                ARGV[13] turn hash TTL (s)
    ARGV[14] memory log entry detail, JSON object; the id of the API key that sent the turn,
             if the turn hash names one, is added as key_id (provenance)
    ARGV[15] event stream TTL (s): the session's

  Output:
    1   applied
    0   already applied earlier: only acknowledged
    -1  bump target no longer exists (expired or dropped): nothing written, entry left pending
    -2  write target already exists (id collision): nothing written, entry left pending

  Events: turn_appended:<role> with the outcome as detail (the reference demos' turn event);
  memory_written or memory_deduped on the memory log.
]]
-- @include nowTs
-- @include ackDelete
-- @include logEvent

local turnKey, memoryKey, eventsKey, rememberKey, memoryLogKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, entryId, mode = ARGV[1], ARGV[2], ARGV[3]
local eventsMaxLen, channel, turnId, turnTtl = ARGV[10], ARGV[11], ARGV[12], tonumber(ARGV[13])

local function ack() ackDelete(rememberKey, group, entryId) end

if redis.call('HEXISTS', turnKey, 'memory') == 1 then
  ack()
  return 0
end

if mode == 'bump' then
  if redis.call('EXISTS', memoryKey) == 0 then return -1 end
  redis.call('JSON.NUMINCRBY', memoryKey, '$.hit_count', 1)
else
  if not redis.call('JSON.SET', memoryKey, '$', ARGV[4], 'NX') then return -2 end
  local ttl = tonumber(ARGV[5])
  if ttl > 0 then redis.call('EXPIRE', memoryKey, ttl) end
end

local ts = nowTs()
redis.call('HSET', turnKey, 'memory', ARGV[6], 'remember_ms', ARGV[7], 'status', 'done', 'done_ts', ts)
redis.call('EXPIRE', turnKey, turnTtl)
logEvent(eventsKey, eventsMaxLen, tonumber(ARGV[15]), 'turn_appended:' .. ARGV[8], ARGV[9], ts)
local logDetail = ARGV[14]
local keyId = redis.call('HGET', turnKey, 'key_id')
if keyId then
  local detail = cjson.decode(logDetail)
  detail.key_id = keyId
  logDetail = cjson.encode(detail)
end
redis.call('XADD', memoryLogKey, 'MAXLEN', '~', 10000, '*',
  'action', mode == 'bump' and 'memory_deduped' or 'memory_written', 'detail', logDetail, 'ts', ts)
redis.call('PUBLISH', channel, turnId)
ack()
return 1
