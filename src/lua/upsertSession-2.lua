--[[
  Starts a thread or sets its goal and scratchpad, atomically: creates the session hash if it does
  not exist (logging thread_started), sets the given fields, logs goal_set when a goal is given,
  stamps last_active_ts and refreshes the TTL (no window where the hash exists without TTL).

  Input:
    KEYS[1]  session hash (agent:session:<thread_id>)
    KEYS[2]  event stream (agent:events:<thread_id>)
    ARGV[1]  thread_id          ARGV[2]  user (written only when the hash is created)
    ARGV[3]  agent (written only when the hash is created)
    ARGV[4]  namespace (named in thread_started)
    ARGV[5]  session TTL (s), also the event stream's
    ARGV[6]  "1" to refuse a hash that exists with another `user`; "" to write whoever owns it
    ARGV[7]  id of the API key acting, "" without one (provenance in thread_started)
    ARGV[8]  event stream MAXLEN ~
    ARGV[9]  "1" to set the goal to ARGV[10]     ARGV[10] goal
    ARGV[11] "1" to set the scratchpad to ARGV[12]  ARGV[12] scratchpad

  Output:
    1 when the hash was created, 0 when it existed
    ERR.THREAD_NOT_VISIBLE when it belongs to another user (nothing written)

  Events: thread_started (when the hash is created), goal_set (detail: the goal).
]]
-- @include errors
-- @include nowTs
-- @include logEvent
-- @include session

local sessionKey, eventsKey = KEYS[1], KEYS[2]
local s = { threadId = ARGV[1], user = ARGV[2], agent = ARGV[3], namespace = ARGV[4],
  ttl = tonumber(ARGV[5]), keyId = ARGV[7], eventsMaxLen = ARGV[8] }
local setGoal, goal, setScratchpad, scratchpad = ARGV[9] == '1', ARGV[10], ARGV[11] == '1', ARGV[12]

if ARGV[6] == '1' and ownedByOther(sessionKey, s.user) then return ERR.THREAD_NOT_VISIBLE end

local ts = nowTs()
local created = openSession(sessionKey, eventsKey, s, ts)
if setGoal then
  redis.call('HSET', sessionKey, 'goal', goal)
  logEvent(eventsKey, s.eventsMaxLen, s.ttl, 'goal_set', goal, ts)
end
if setScratchpad then redis.call('HSET', sessionKey, 'scratchpad', scratchpad) end
redis.call('HSET', sessionKey, 'last_active_ts', ts)
redis.call('EXPIRE', sessionKey, s.ttl)
return created
