import { Ingest, connectService, createTiers, loadConfig, parseTurnInput } from 'agentmem';

const config = loadConfig(); // AGENTMEM_* variables, read as `agentmem serve` reads them
const redis = connectService(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const { keys, working } = createTiers(redis, config);

await working.start('trip-42', { user: 'alice' });
// Queue a turn for the workers exactly as POST /v1/threads/trip-42/turns does.
const turn = parseTurnInput('trip-42', { content: 'Alice is flying to Lisbon in May.', user: 'alice' }, config);
const accepted = await new Ingest(redis, keys, config).accept(turn);
const thread = await working.load('trip-42');
console.log(JSON.stringify({ turn_id: accepted.turnId, turn_count: thread?.turn_count }));
await redis.quit();
