--[[
  pushTurn(sessionKey, threadId, user, agent, role, content, window, ttl, ts)
  Appends one turn to a session hash: creates the hash if it is new (user and agent are written
  only then), pushes the turn onto recent_turns, trims to the window, counts, stamps
  last_active_ts and refreshes the TTL.
  Returns turn_count after the append and 1 if the hash was created (else 0); or -1 and nothing
  written when recent_turns holds something that is not a JSON array.
]]
local function pushTurn(sessionKey, threadId, user, agent, role, content, window, ttl, ts)
  local turns = {}
  local existing = redis.call('HGET', sessionKey, 'recent_turns')
  if existing then
    local ok, decoded = pcall(cjson.decode, existing)
    if not ok or type(decoded) ~= 'table' or (next(decoded) ~= nil and decoded[1] == nil) then
      return -1, 0
    end
    turns = decoded
  end

  local created = 0
  if redis.call('EXISTS', sessionKey) == 0 then
    redis.call('HSET', sessionKey,
      'thread_id', threadId, 'user', user, 'agent', agent,
      'goal', '', 'scratchpad', '', 'turn_count', '0', 'created_ts', ts)
    created = 1
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
  return count, created
end
