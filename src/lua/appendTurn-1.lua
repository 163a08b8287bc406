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
-- @include nowTs
-- @include pushTurn

local ts = nowTs()
local count = pushTurn(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ts)
if count < 0 then return count end
return { count, ts }
