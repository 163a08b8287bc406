--[[
  Appends one turn to a thread's working memory, atomically: create the hash if it is new, push
  the turn onto recent_turns, trim to the window, count, timestamp, refresh the TTL. Doing this in
  one script closes the reference demos' race (HGETALL, append in the app, HSET loses turns).

  Input:
    KEYS[1]  session hash key (agent:session:<thread_id>)
    ARGV[1]  thread_id
    ARGV[2]  user   (written only when the hash is created)
    ARGV[3]  agent  (written only when the hash is created)
    ARGV[4]  role
    ARGV[5]  content
    ARGV[6]  window size (max turns kept, >= 1)
    ARGV[7]  TTL in seconds

  Output:
    { turn_count, ts }  turn_count after this append; ts the turn's timestamp (float seconds string)
    -1                  recent_turns holds something that is not a JSON array (left untouched)
]]
local sessionKey = KEYS[1]
local threadId, user, agent = ARGV[1], ARGV[2], ARGV[3]
local role, content = ARGV[4], ARGV[5]
local window = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])

local t = redis.call('TIME')
local ts = string.format('%d.%06d', t[1], t[2])

local turns
local existing = redis.call('HGET', sessionKey, 'recent_turns')
if existing then
  local ok, decoded = pcall(cjson.decode, existing)
  if not ok or type(decoded) ~= 'table' or (next(decoded) ~= nil and decoded[1] == nil) then
    return -1
  end
  turns = decoded
else
  turns = {}
end

if redis.call('EXISTS', sessionKey) == 0 then
  redis.call('HSET', sessionKey,
    'thread_id', threadId, 'user', user, 'agent', agent,
    'goal', '', 'scratchpad', '', 'turn_count', '0', 'created_ts', ts)
end

turns[#turns + 1] = { role = role, content = content, ts = tonumber(ts) }
local first = #turns - window + 1
if first > 1 then
  local kept = {}
  for i = first, #turns do kept[#kept + 1] = turns[i] end
  turns = kept
end

local count = redis.call('HINCRBY', sessionKey, 'turn_count', 1)
redis.call('HSET', sessionKey, 'recent_turns', cjson.encode(turns), 'last_active_ts', ts)
redis.call('EXPIRE', sessionKey, ttl)
return { count, ts }
