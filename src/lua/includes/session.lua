--[[
  A thread's session hash: the one place it is created and the one place a turn is pushed onto it.
  Needs the errors and logEvent includes before it.

  ownedByOther(sessionKey, user): true when the hash exists with another `user`, compared
    ASCII-case-insensitively as the index compares TAGs.

  openSession(sessionKey, eventsKey, s, ts): creates the hash unless it exists (user and agent are
    written only then) and logs thread_started with the owner (`s.keyId` as provenance when not
    ''). `s`: { threadId, user, agent, namespace, keyId, ttl, eventsMaxLen }. Returns 1 if
    created, else 0. Does not refresh the TTL: the caller's write does.

  pushTurn(sessionKey, eventsKey, s, role, content, window, ts): opens the session, pushes the turn
    onto recent_turns, trims to the window, counts, stamps last_active_ts and refreshes the TTL.
    Returns turn_count after the append; or ERR.RECENT_TURNS_NOT_ARRAY and nothing written when
    recent_turns holds something that is not a JSON array.

  recent_turns is encoded here rather than by cjson.encode, which writes numbers with 14
  significant digits (1715990400.1235): each turn's ts keeps the microseconds its hash fields have.
]]
local function ownedByOther(sessionKey, user)
  local owner = redis.call('HGET', sessionKey, 'user')
  return owner ~= false and string.lower(owner) ~= string.lower(user)
end

local function openSession(sessionKey, eventsKey, s, ts)
  if redis.call('EXISTS', sessionKey) == 1 then return 0 end
  redis.call('HSET', sessionKey,
    'thread_id', s.threadId, 'user', s.user, 'agent', s.agent,
    'goal', '', 'scratchpad', '', 'turn_count', '0', 'created_ts', ts, 'recent_turns', '[]')
  local started = 'user=' .. s.user .. ' namespace=' .. s.namespace
  if s.keyId ~= '' then started = started .. ' key_id=' .. s.keyId end
  logEvent(eventsKey, s.eventsMaxLen, s.ttl, 'thread_started', started, ts)
  return 1
end

-- One turn as JSON: role, content, ts first (the reference field order), then any field another
-- writer added. `rawTs`: the exact text of a new turn's ts; turns read back carry a number.
local function encodeTurn(turn, rawTs)
  if type(turn) ~= 'table' then return cjson.encode(turn) end
  local ts = rawTs
  if ts == nil and type(turn.ts) == 'number' then ts = string.format('%.6f', turn.ts) end
  local parts = {}
  if turn.role ~= nil then parts[#parts + 1] = '"role":' .. cjson.encode(turn.role) end
  if turn.content ~= nil then parts[#parts + 1] = '"content":' .. cjson.encode(turn.content) end
  if ts ~= nil then
    parts[#parts + 1] = '"ts":' .. ts
  elseif turn.ts ~= nil then
    parts[#parts + 1] = '"ts":' .. cjson.encode(turn.ts)
  end
  for name, value in pairs(turn) do
    if name ~= 'role' and name ~= 'content' and name ~= 'ts' then
      parts[#parts + 1] = cjson.encode(tostring(name)) .. ':' .. cjson.encode(value)
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function pushTurn(sessionKey, eventsKey, s, role, content, window, ts)
  local turns = {}
  local existing = redis.call('HGET', sessionKey, 'recent_turns')
  if existing then
    local ok, decoded = pcall(cjson.decode, existing)
    if not ok or type(decoded) ~= 'table' or (next(decoded) ~= nil and decoded[1] == nil) then
      return ERR.RECENT_TURNS_NOT_ARRAY
    end
    turns = decoded
  end

  openSession(sessionKey, eventsKey, s, ts)

  local first = math.max(1, #turns + 2 - window)
  local encoded = {}
  for i = first, #turns do encoded[#encoded + 1] = encodeTurn(turns[i]) end
  encoded[#encoded + 1] = encodeTurn({ role = role, content = content }, ts)

  local count = redis.call('HINCRBY', sessionKey, 'turn_count', 1)
  redis.call('HSET', sessionKey, 'recent_turns', '[' .. table.concat(encoded, ',') .. ']', 'last_active_ts', ts)
  redis.call('EXPIRE', sessionKey, s.ttl)
  return count
end
