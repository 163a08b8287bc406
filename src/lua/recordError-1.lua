--[[
  Keeps why a stage failed to process a turn's entry, on the turn hash, so that the dead-letter
  reason names the error should the entry keep failing (deadLetter-4.lua reads it). A later
  failure of the same stage replaces it. A turn hash that is gone (expired) is not re-created:
  it would have no TTL.

  Input:
    KEYS[1]  turn hash (agentmem:turn:<turn_id>)
    ARGV[1]  consumer group of the stage (embed-recall | remember)
    ARGV[2]  the error, as text

  Output:
    1  recorded
    0  no such turn
]]

local turnKey = KEYS[1]
local group, message = ARGV[1], ARGV[2]

if redis.call('EXISTS', turnKey) == 0 then return 0 end
redis.call('HSET', turnKey, 'last_error:' .. group, message)
return 1
