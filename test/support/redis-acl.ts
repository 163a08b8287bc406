/**
 * The least a Redis ACL user needs to run every agentmem process (API, workers, consolidator), as
 * the README documents it and docker-compose.yml applies it: agentmem's own commands, each by name,
 * on its four key prefixes and its channels; BullMQ (the consolidator's schedule) every command on
 * its data types (strings, hashes, lists, sets, sorted sets, streams) and the key commands its
 * scripts use, on its own keys only. Categories in the BullMQ selector are data-type ones on
 * purpose: a selector's key pattern does not confine commands that name no key, and @read,
 * @write or @scripting hold some (SCAN, RANDOMKEY, SCRIPT FLUSH, FUNCTION FLUSH). CONFIG is left
 * out on purpose (CONFIG GET reads passwords): durability then reads INFO instead.
 */
export const REDIS_ACL_RULES: readonly string[] = [
  'resetkeys', '~agent:session:*', '~agent:mem:*', '~agent:events:*', '~agentmem:*',
  'resetchannels', '&agentmem:channel:*', '&__keyevent@*__:expired',
  'nocommands',
  // Connections: ioredis's ready check and names, the module check at start.
  '+ping', '+info', '+client|setname', '+client|setinfo', '+quit', '+module|list',
  // agentmem's Lua scripts (EVAL when a script is not cached yet) and the commands they call.
  '+evalsha', '+eval', '+time', '+multi', '+exec', '+discard',
  '+ft.create', '+ft.info', '+ft.search', '+ft.aggregate',
  '+json.get', '+json.mget', '+json.set', '+json.numincrby',
  '+get', '+set', '+del', '+unlink', '+exists', '+expire', '+pexpire', '+persist', '+ttl',
  '+hset', '+hget', '+hmget', '+hgetall', '+hexists', '+hincrby', '+hdel',
  '+xadd', '+xack', '+xdel', '+xlen', '+xrange', '+xrevrange', '+xread', '+xreadgroup', '+xpending', '+xclaim',
  '+xgroup|create', '+xgroup|createconsumer', '+xgroup|delconsumer', '+xinfo|consumers', '+xinfo|groups', '+xinfo|stream',
  '+publish', '+subscribe', '+psubscribe', '+waitaof',
  // API keys (#11): their records, the set that lists them, expiry.
  '+expireat', '+sadd', '+smembers', '+srem',
  '(~agentmem:bull:* +@string +@hash +@list +@set +@sortedset +@stream +del +unlink +exists +type +rename +pexpire +pexpireat +persist +pttl +evalsha +eval)',
];
