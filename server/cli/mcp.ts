import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { openAgentMem } from '../../src/agentmem.js';
import { OPEN_PRINCIPAL } from '../../src/auth/principal.js';
import type { Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { callerIn } from '../mcp/context.js';
import { buildMcpServer } from '../mcp/server.js';
import { startPipeline } from '../service.js';
import type { Command } from './args.js';
import { shutDownWithin, untilSignal } from './signals.js';

/**
 * `agentmem mcp`: an MCP server on stdin/stdout for one local agent. It runs what `serve` runs
 * minus the HTTP API (Redis embedded unless REDIS_URL, the model, both pipeline workers unless
 * --api-only), so one line in an MCP client's configuration is a whole memory. Several such
 * processes, or one next to a `serve`, share the Redis and its streams like any group of workers.
 */
export const mcpCommand: Command = {
  name: 'mcp',
  summary: 'Run an MCP (Model Context Protocol) server on stdin/stdout for a local agent: memory tools and resources in the scope of --mcp-user and --mcp-namespace; Redis embedded unless REDIS_URL; pipeline workers in this process unless --api-only. Logs go to stderr. Ends when stdin closes.',
  usage: 'agentmem mcp [options]',
  async run(config) {
    // stdout carries the protocol: one stray line from a library would be a malformed message.
    console.log = console.info = console.debug = console.error;
    const log = createLogger(config.logLevel, { component: 'mcp' });
    const stopRequested = untilSignal(log);
    const stdinClosed = new Promise<string>((resolve) => {
      process.stdin.once('end', () => resolve('stdin closed'));
      process.stdin.once('close', () => resolve('stdin closed'));
    });
    const mem = await openAgentMem(embedderShape(config), log);
    const pipeline = await startPipeline(mem, config, log, { workers: !config.apiOnly }).catch(async (err: unknown) => {
      await mem.close();
      throw err;
    });
    const scope = { user: config.mcpUser, namespace: config.mcpNamespace };
    const server = buildMcpServer({ ...mem, ...pipeline, config, log }, callerIn(OPEN_PRINCIPAL, scope));
    await server.connect(new StdioServerTransport());
    log.info('mcp.listening', { transport: 'stdio', ...scope, redis: mem.server.origin, workers: pipeline.workers.map((w) => w.name) });
    const reason = await Promise.race([stopRequested, stdinClosed]);
    log.info('mcp.stopping', { reason, timeout_ms: config.shutdownTimeoutMs });
    await shutDownWithin(config.shutdownTimeoutMs, log, async () => {
      await server.close();
      await pipeline.stop();
      await mem.close();
    });
    // Stopped by a signal, stdin is still open and would keep the process alive.
    process.stdin.destroy();
    return 0;
  },
};

/** Without workers the process embeds only queries, one at a time: one session does that quicker than several, as for `serve --api-only`. */
function embedderShape(config: Config): Config {
  return config.apiOnly && config.embedSessions === 0 ? { ...config, embedSessions: 1 } : config;
}
