--[[
  Releases a lock only if this holder still owns it (a lock that expired and was taken by another
  holder must not be deleted), or extends it when ARGV[2] is given.

  Input:
    KEYS[1]  lock key
    ARGV[1]  holder token
    ARGV[2]  new TTL in milliseconds to extend by, or '' to release

  Output:
    1  released or extended     0  not held by this token
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
