--[[ ackDelete(stream, group, id): acknowledges an entry and deletes it, so a stream's length is its backlog. ]]
local function ackDelete(stream, group, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
