--[[
  Completes the embed-and-recall stage of one turn, atomically: stores the recall results, logs
  recall_ready, hands the turn on to the remember stage (with its embedding, so nothing is
  embedded twice) or finishes it when nothing is to be remembered, and acknowledges and deletes
  the ingest entry. A redelivered entry whose recall is already stored is only acknowledged.

  Input:
    KEYS[1]  turn hash              KEYS[2]  event stream (agent:events:<thread_id>)
    KEYS[3]  remember stream        KEYS[4]  ingest stream
    ARGV[1]  consumer group         ARGV[2]  ingest entry id
    ARGV[3]  recall results, JSON   ARGV[4]  recall_ready event detail, JSON
    ARGV[5]  embed_ms               ARGV[6]  recall_ms
    ARGV[7]  remember: episodic | semantic | skip
    ARGV[8]  embedding, 384 little-endian float32 (binary)
    ARGV[9]  turn_id                ARGV[10] thread_id
    ARGV[11] user                   ARGV[12] namespace
    ARGV[13] role                   ARGV[14] content
    ARGV[15] event stream MAXLEN ~  ARGV[16] channel announcing finished turns
    ARGV[17] turn hash TTL (s)       ARGV[18] event stream TTL (s): the session's

  Output:
    1  stored and handed on (or finished)
    0  already stored earlier: only acknowledged

  Events: recall_ready; turn_appended:<role> (empty detail) when remember is skip.
]]
-- @include nowTs
-- @include ackDelete
-- @include logEvent

local turnKey, eventsKey, rememberKey, ingestKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, entryId = ARGV[1], ARGV[2]
local remember, turnId, role = ARGV[7], ARGV[9], ARGV[13]
local eventsMaxLen, channel, turnTtl, eventsTtl = ARGV[15], ARGV[16], tonumber(ARGV[17]), tonumber(ARGV[18])

local function ack() ackDelete(ingestKey, group, entryId) end

if redis.call('HEXISTS', turnKey, 'recall') == 1 then
  ack()
  return 0
end

local ts = nowTs()
redis.call('HSET', turnKey, 'recall', ARGV[3], 'embed_ms', ARGV[5], 'recall_ms', ARGV[6], 'recall_ts', ts)
logEvent(eventsKey, eventsMaxLen, eventsTtl, 'recall_ready', ARGV[4], ts)

if remember == 'skip' then
  redis.call('HSET', turnKey, 'status', 'done', 'done_ts', ts)
  logEvent(eventsKey, eventsMaxLen, eventsTtl, 'turn_appended:' .. role, '', ts)
  redis.call('PUBLISH', channel, turnId)
else
  redis.call('XADD', rememberKey, '*',
    'turn_id', turnId, 'thread_id', ARGV[10], 'user', ARGV[11], 'namespace', ARGV[12],
    'kind', remember, 'role', role, 'content', ARGV[14], 'embedding', ARGV[8])
end
redis.call('EXPIRE', turnKey, turnTtl)
ack()
return 1
