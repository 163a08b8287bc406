--[[
  Writes or bumps one long-term memory: the one write path of long-term memory, for the pipeline's
  remember stage and for seeding alike. Either bumps the near-duplicate's hit_count or writes the
  new document with its TTL, and logs the change on the memory log (memory_deduped or
  memory_written), so open pages follow every write.

  For a turn (ARGV[12] not ''), also exactly once: records the outcome on the turn, logs it on the
  thread, and acknowledges and deletes the remember entry. The turn hash is the marker: a
  redelivered entry (a worker died after this ran, or two workers raced on one entry) finds the
  outcome already recorded and is only acknowledged, so no memory is written twice and none bumped
  twice. Without a turn, KEYS[1], KEYS[3] and KEYS[4] are not touched (any key of the slot will do).

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
    ARGV[12] turn_id, '' for a write that belongs to no turn (seeding)
    ARGV[13] turn hash TTL (s)
    ARGV[14] memory log entry detail, JSON object; the id of the API key that sent the turn,
             if the turn hash names one, is added as key_id (provenance)
    ARGV[15] event stream TTL (s): the session's
    ARGV[16] memory log MAXLEN ~

  Output:
    1                  applied
    0                  already applied earlier for this turn: only acknowledged
    ERR.MEMORY_GONE    bump target no longer exists (expired or dropped): nothing written, entry left pending
    ERR.MEMORY_EXISTS  write target already exists (id collision): nothing written, entry left pending

  Events: memory_written or memory_deduped on the memory log; for a turn, turn_appended:<role>
  with the outcome as detail (the reference demos' turn event).
]]
-- @include errors
-- @include nowTs
-- @include ackDelete
-- @include logEvent

local turnKey, memoryKey, eventsKey, rememberKey, memoryLogKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, entryId, mode = ARGV[1], ARGV[2], ARGV[3]
local eventsMaxLen, channel, turnId, turnTtl = ARGV[10], ARGV[11], ARGV[12], tonumber(ARGV[13])
local forTurn = turnId ~= ''

local function ack() ackDelete(rememberKey, group, entryId) end

if forTurn and redis.call('HEXISTS', turnKey, 'memory') == 1 then
  ack()
  return 0
end

if mode == 'bump' then
  if redis.call('EXISTS', memoryKey) == 0 then return ERR.MEMORY_GONE end
  redis.call('JSON.NUMINCRBY', memoryKey, '$.hit_count', 1)
else
  if not redis.call('JSON.SET', memoryKey, '$', ARGV[4], 'NX') then return ERR.MEMORY_EXISTS end
  local ttl = tonumber(ARGV[5])
  if ttl > 0 then redis.call('EXPIRE', memoryKey, ttl) end
end

local ts = nowTs()
local logDetail = ARGV[14]
if forTurn then
  redis.call('HSET', turnKey, 'memory', ARGV[6], 'remember_ms', ARGV[7], 'status', 'done', 'done_ts', ts)
  redis.call('EXPIRE', turnKey, turnTtl)
  logEvent(eventsKey, eventsMaxLen, tonumber(ARGV[15]), 'turn_appended:' .. ARGV[8], ARGV[9], ts)
  local keyId = redis.call('HGET', turnKey, 'key_id')
  if keyId then
    local detail = cjson.decode(logDetail)
    detail.key_id = keyId
    logDetail = cjson.encode(detail)
  end
end
redis.call('XADD', memoryLogKey, 'MAXLEN', '~', ARGV[16], '*',
  'action', mode == 'bump' and 'memory_deduped' or 'memory_written', 'detail', logDetail, 'ts', ts)
if forTurn then
  redis.call('PUBLISH', channel, turnId)
  ack()
end
return 1
