--[[
  Creates a thread's working memory if it does not exist, sets the given fields, stamps
  last_active_ts and refreshes the TTL, atomically (no window where the hash exists without TTL).

  Input:
    KEYS[1]   session hash key (agent:session:<thread_id>)
    ARGV[1]   thread_id
    ARGV[2]   user   (written only when the hash is created)
    ARGV[3]   agent  (written only when the hash is created)
    ARGV[4]   TTL in seconds
    ARGV[5]   "1" to refuse a hash that exists with another `user` (compared ASCII-case-
              insensitively, as the index compares TAGs); "" to write whoever owns it
    ARGV[6..] field, value, field, value, ... to set (the caller allows only goal and scratchpad)

  Output:
    1 when the hash was created, 0 when it existed
    -3 when it belongs to another user (nothing written)
]]
-- @include nowTs

local sessionKey = KEYS[1]
local threadId, user, agent = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])

if ARGV[5] == '1' then
  local owner = redis.call('HGET', sessionKey, 'user')
  if owner and string.lower(owner) ~= string.lower(user) then return -3 end
end

local ts = nowTs()

local created = 0
if redis.call('EXISTS', sessionKey) == 0 then
  redis.call('HSET', sessionKey,
    'thread_id', threadId, 'user', user, 'agent', agent,
    'goal', '', 'scratchpad', '', 'turn_count', '0', 'created_ts', ts, 'recent_turns', '[]')
  created = 1
end

for i = 6, #ARGV, 2 do
  redis.call('HSET', sessionKey, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', sessionKey, 'last_active_ts', ts)
redis.call('EXPIRE', sessionKey, ttl)
return created
