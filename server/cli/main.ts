#!/usr/bin/env node
import { ValidationError } from '../../src/errors.js';
import { commandHelp, parseCommandArgs, type Command } from './args.js';
import { consolidateCommand } from './consolidate.js';
import { embedCommand } from './embed.js';
import { keysCommand } from './keys.js';
import { mcpCommand } from './mcp.js';
import { provisionCommand } from './provision.js';
import { redisCommand } from './redis.js';
import { serveCommand } from './serve.js';
import { workerCommand } from './worker.js';

const COMMANDS: readonly Command[] = [serveCommand, mcpCommand, workerCommand, consolidateCommand, keysCommand, redisCommand, embedCommand, provisionCommand];

function mainHelp(): string {
  return [
    'Usage: agentmem <command> [options]',
    '',
    'Redis-backed memory for AI agents: working memory, long-term vector memory, event log.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    "Run 'agentmem <command> --help' for a command's options.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`agentmem: unknown command '${name}'\n\n${mainHelp()}\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseCommandArgs(command, rest);
  } catch (err) {
    process.stderr.write(`agentmem ${name}: ${(err as Error).message}\n\n${commandHelp(command)}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(commandHelp(command) + '\n');
    return 0;
  }
  return command.run(parsed.config, parsed.positionals, parsed.switches, parsed.options);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`agentmem: ${message}\n`);
    process.exitCode = err instanceof ValidationError ? 2 : 1;
  },
);
