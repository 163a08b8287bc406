import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Keys } from './keys.js';
import { stageConsumers } from './pipeline/liveness.js';
import type { Durability } from './redis/durability.js';
import { pairs } from './redis/reply.js';
import type { StreamFanout } from './redis/stream-fanout.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every metric of one process, on a registry of its own (tests run several services in one
 * process). Names follow Prometheus conventions: agentmem_*, seconds, _total for counters.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly turnsIngested = new Counter({ name: 'agentmem_turns_ingested_total', help: 'Turns posted to the ingest API, by result (accepted, replayed, rejected).', labelNames: ['result'], registers: [this.registry] });
  readonly stageSeconds = new Histogram({ name: 'agentmem_stage_duration_seconds', help: 'Time per pipeline stage: embed (per batch), recall, remember (per turn), end_to_end (accepted to recall ready).', labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'agentmem_batch_size', help: 'Entries handled per batch, by stage.', labelNames: ['stage'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  readonly recallHits = new Histogram({ name: 'agentmem_recall_hits', help: 'Memories returned per recall.', buckets: [0, 1, 2, 3, 5, 10, 20], registers: [this.registry] });
  readonly recallDistance = new Histogram({ name: 'agentmem_recall_distance', help: 'Cosine distance of each recalled memory.', buckets: [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2], registers: [this.registry] });
  readonly memoryWrites = new Counter({ name: 'agentmem_memory_writes_total', help: 'Remember outcomes: written (new memory) or deduped (hit_count bumped).', labelNames: ['outcome'], registers: [this.registry] });
  readonly consolidatorMerges = new Counter({ name: 'agentmem_consolidator_merges_total', help: 'Near-duplicate memories merged into a survivor.', registers: [this.registry] });
  readonly consolidatorPassSeconds = new Histogram({ name: 'agentmem_consolidator_pass_duration_seconds', help: 'Duration of consolidation passes that ran (not skipped).', buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300], registers: [this.registry] });
  readonly searchIncomplete = new Counter({ name: 'agentmem_search_incomplete_total', help: 'Vector searches that came back incomplete (timeout or partial-results warning), by the strategy that ran (brute-force, hnsw) and what followed (retried with the other strategy, failed: answered 503 / left for redelivery).', labelNames: ['strategy', 'outcome'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'agentmem_errors_total', help: 'Errors by kind.', labelNames: ['kind'], registers: [this.registry] });

  constructor() {
    // Unprefixed on purpose: process_* and nodejs_* are the names dashboards expect.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Stream lengths, consumer-group pending counts and lag, and dead letters, read from Redis at each scrape. */
  watchStreams(redis: Redis, keys: Keys): void {
    const streams = [keys.ingestStream, keys.rememberStream];
    new Gauge({ name: 'agentmem_stream_length', help: 'Entries in each pipeline stream (the backlog: entries are deleted once done).', labelNames: ['stream'], registers: [this.registry],
      async collect() {
        const lengths = await Promise.all(streams.map((s) => redis.xlen(s)));
        streams.forEach((s, i) => this.set({ stream: s }, lengths[i] as number));
      } });
    new Gauge({ name: 'agentmem_stream_pending', help: 'Entries delivered to a consumer and not yet acknowledged, per group.', labelNames: ['stream', 'group'], registers: [this.registry],
      async collect() {
        for (const group of await groupsOf(redis, streams)) this.set({ stream: group.stream, group: group.name }, group.pending);
      } });
    new Gauge({ name: 'agentmem_stream_lag', help: 'Entries not yet delivered to a group.', labelNames: ['stream', 'group'], registers: [this.registry],
      async collect() {
        for (const group of await groupsOf(redis, streams)) this.set({ stream: group.stream, group: group.name }, group.lag);
      } });
    new Gauge({ name: 'agentmem_stage_live_consumers', help: 'Consumers of each pipeline stage that read recently; 0 means the stage is stalled (/readyz says degraded).', labelNames: ['stage'], registers: [this.registry],
      async collect() {
        for (const s of await stageConsumers(redis, keys)) this.set({ stage: s.stage }, s.live);
      } });
    new Gauge({ name: 'agentmem_deadletter_entries', help: 'Entries in the dead-letter stream.', registers: [this.registry],
      async collect() {
        this.set(await redis.xlen(keys.deadLetterStream));
      } });
  }

  /** Whether a Redis crash could lose acknowledged turns, read from Redis at each scrape, and acknowledgements WAITAOF did not confirm. */
  watchDurability(durability: Pick<Durability, 'check' | 'unconfirmed'>): void {
    new Gauge({ name: 'agentmem_durability_at_risk', help: '1 when a Redis crash could lose acknowledged turns (the persistence settings as read at this scrape; /readyz says why), else 0.', registers: [this.registry],
      async collect() {
        const found = await durability.check().catch(() => undefined);
        if (found) this.set(found.atRisk ? 1 : 0);
      } });
    new Gauge({ name: 'agentmem_durability_unconfirmed_acks', help: 'Turns acknowledged since start although WAITAOF did not confirm them on disk in time (AGENTMEM_DURABILITY=auto).', registers: [this.registry],
      collect() {
        this.set(durability.unconfirmed);
      } });
  }

  /** Server-Sent Events clients of this process and the event streams they follow (one shared Redis read). */
  watchEventStreams(fanout: Pick<StreamFanout, 'size'>): void {
    new Gauge({ name: 'agentmem_event_stream_clients', help: 'Server-Sent Events clients connected to this process.', registers: [this.registry],
      collect() {
        this.set(fanout.size.followers);
      } });
    new Gauge({ name: 'agentmem_event_streams_followed', help: 'Event streams this process reads for its Server-Sent Events clients.', registers: [this.registry],
      collect() {
        this.set(fanout.size.streams);
      } });
  }
}

async function groupsOf(redis: Redis, streams: string[]): Promise<{ stream: string; name: string; pending: number; lag: number }[]> {
  const out: { stream: string; name: string; pending: number; lag: number }[] = [];
  for (const stream of streams) {
    const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    for (const raw of groups) {
      const fields = pairs(raw);
      out.push({ stream, name: String(fields.get('name')), pending: Number(fields.get('pending') ?? 0), lag: Number(fields.get('lag') ?? 0) });
    }
  }
  return out;
}
