--[[
  Accepts one turn into the pipeline, atomically: the turn is appended to the thread's working
  memory AND queued for the workers AND logged, or none of it happens. Because the append happens
  here, working memory holds turns in exactly the order the API accepted them, however many
  workers later process them and in whatever order they finish.

  Input:
    KEYS[1]  session hash (agent:session:<thread_id>)
    KEYS[2]  ingest stream (turns waiting for the embed-and-recall workers)
    KEYS[3]  event stream (agent:events:<thread_id>)
    KEYS[4]  turn hash (the turn's status and results, read by polling and ?wait)
    KEYS[5]  idempotency key (only read/written when ARGV[15] is "1")
    KEYS[6]  remember stream (turns embedded, waiting for the remember workers)
    ARGV[1]  thread_id          ARGV[2]  user            ARGV[3]  agent
    ARGV[4]  role               ARGV[5]  content         ARGV[6]  window size
    ARGV[7]  session TTL (s)    ARGV[8]  turn_id         ARGV[9]  namespace
    ARGV[10] remember (episodic|semantic|skip)           ARGV[11] k
    ARGV[12] recall threshold   ARGV[13] event stream MAXLEN ~
    ARGV[14] turn hash / idempotency TTL (s)             ARGV[15] "1" when an Idempotency-Key was given
    ARGV[16] backlog bound: refuse when the two pipeline streams together already hold this many
             entries (processed entries are deleted, so a stream's length is its backlog; counting
             both stages keeps the bound when one stage has no live worker)
    ARGV[17] "1" to refuse a thread that exists with another owner (its `user`, compared
             ASCII-case-insensitively as the index compares TAGs); "" to append whoever owns it
    ARGV[18] id of the API key that sent the turn, "" without one (provenance: kept on the turn
             hash, the ingest entry and the turn_accepted / thread_started events)

  Output:
    { 1, turn_id, turn_count, stream_id }  accepted
    { 0, turn_id }                         a retry with a known Idempotency-Key: the first turn_id
    ERR.RECENT_TURNS_NOT_ARRAY             the session's recent_turns is not a JSON array
    ERR.BACKLOG_FULL                       nothing written
    ERR.THREAD_NOT_VISIBLE                 the thread belongs to another user (nothing written; checked
                                           before the Idempotency-Key, which must not answer for a thread
                                           the caller cannot see)

  Events: thread_started (when the session is created), turn_accepted. The event stream gets the
  session's TTL.
]]
-- @include errors
-- @include nowTs
-- @include logEvent
-- @include session

local sessionKey, ingestKey, eventsKey, turnKey, idemKey, rememberKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local threadId, user, agent, role, content = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local window, sessionTtl, turnId, namespace = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
local remember, k, threshold, eventsMaxLen = ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local turnTtl, useIdem, maxBacklog = tonumber(ARGV[14]), ARGV[15] == '1', tonumber(ARGV[16])
local checkOwner, keyId = ARGV[17] == '1', ARGV[18]

if checkOwner and ownedByOther(sessionKey, user) then return ERR.THREAD_NOT_VISIBLE end

if useIdem then
  local known = redis.call('GET', idemKey)
  if known then return { 0, known } end
end
if redis.call('XLEN', ingestKey) + redis.call('XLEN', rememberKey) >= maxBacklog then return ERR.BACKLOG_FULL end

local ts = nowTs()
local session = { threadId = threadId, user = user, agent = agent, namespace = namespace, keyId = keyId,
  ttl = sessionTtl, eventsMaxLen = eventsMaxLen }
local count = pushTurn(sessionKey, eventsKey, session, role, content, window, ts)
if count < 0 then return count end

local streamId = redis.call('XADD', ingestKey, '*',
  'turn_id', turnId, 'thread_id', threadId, 'user', user, 'namespace', namespace,
  'role', role, 'content', content, 'remember', remember, 'k', k, 'threshold', threshold,
  'accepted_ts', ts, 'key_id', keyId)

redis.call('HSET', turnKey, 'turn_id', turnId, 'thread_id', threadId, 'status', 'queued',
  'remember', remember, 'turn_count', count, 'accepted_ts', ts, 'user', user, 'namespace', namespace)
if keyId ~= '' then redis.call('HSET', turnKey, 'key_id', keyId) end
redis.call('EXPIRE', turnKey, turnTtl)
if useIdem then redis.call('SET', idemKey, turnId, 'EX', turnTtl) end

local accepted = { turn_id = turnId, role = role, turn_count = count }
if keyId ~= '' then accepted.key_id = keyId end
logEvent(eventsKey, eventsMaxLen, sessionTtl, 'turn_accepted', cjson.encode(accepted), ts)
return { 1, turnId, count, streamId }
