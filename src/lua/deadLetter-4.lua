--[[
  Moves an entry that keeps failing out of its stream into the dead-letter stream, atomically:
  copies its fields (plus stage, reason and delivery count), acknowledges and deletes it, marks
  the turn failed and logs turn_failed. The reason is "<cause> (after N deliveries)", the cause
  being the last error the stage recorded on the turn, else the one given; with neither (the
  consumers died rather than failed) it is "not processed after N deliveries". The thread's later turns are unaffected: they were
  appended to working memory at acceptance and are processed independently.

  Input:
    KEYS[1]  source stream          KEYS[2]  dead-letter stream
    KEYS[3]  turn hash (may not exist when the entry was too broken to name its turn)
    KEYS[4]  event stream (agent:events:<thread_id>, or a placeholder when unknown)
    ARGV[1]  consumer group         ARGV[2]  entry id
    ARGV[3]  stage (embed-recall | remember)
    ARGV[4]  cause ('' if unknown; the error recorded on the turn by recordError-1.lua wins)
    ARGV[5]  deliveries so far
    ARGV[6]  turn_id ('' if unknown)
    ARGV[7]  event stream MAXLEN ~  ARGV[8]  channel announcing finished turns
    ARGV[9]  dead-letter stream MAXLEN ~
    ARGV[10] event stream TTL (s): the session's

  Output:
    1  moved
    0  the entry is gone from the source stream (already handled): only acknowledged
]]
-- @include nowTs
-- @include logEvent

local sourceKey, deadKey, turnKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, entryId, stage, cause, deliveries = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local turnId, eventsMaxLen, channel, deadMaxLen = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

if turnId ~= '' then
  local recorded = redis.call('HGET', turnKey, 'last_error:' .. group)
  if recorded then cause = recorded end
end
local reason
if cause ~= '' then
  reason = cause .. ' (after ' .. deliveries .. ' deliveries)'
else
  reason = 'not processed after ' .. deliveries .. ' deliveries'
end

local entries = redis.call('XRANGE', sourceKey, entryId, entryId)
redis.call('XACK', sourceKey, group, entryId)
if #entries == 0 then return 0 end

local fields = entries[1][2]
local copy = { 'source_id', entryId, 'stage', stage, 'reason', reason, 'deliveries', deliveries }
for i = 1, #fields, 2 do
  -- The embedding is binary and only useful to the remember stage; the dead letter keeps the text.
  if fields[i] ~= 'embedding' then
    copy[#copy + 1] = fields[i]
    copy[#copy + 1] = fields[i + 1]
  end
end
redis.call('XADD', deadKey, 'MAXLEN', '~', deadMaxLen, '*', unpack(copy))
redis.call('XDEL', sourceKey, entryId)

if turnId ~= '' then
  local ts = nowTs()
  if redis.call('EXISTS', turnKey) == 1 then
    redis.call('HSET', turnKey, 'status', 'failed', 'error', stage .. ': ' .. reason, 'done_ts', ts)
  end
  logEvent(eventsKey, eventsMaxLen, tonumber(ARGV[10]), 'turn_failed', cjson.encode({ turn_id = turnId, stage = stage, reason = reason }), ts)
  redis.call('PUBLISH', channel, turnId)
end
return 1
