import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SETTINGS, loadConfig, DEFAULT_CONFIG, type Config } from '../config.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Setting flags this command accepts (all of them when undefined). */
  settings?: readonly (keyof Config)[];
  /** Boolean flags of the command itself (not settings), with their help. */
  switches?: Readonly<Record<string, string>>;
  run(config: Config, positionals: string[], switches: Readonly<Record<string, boolean>>): Promise<number>;
}

function settingsOf(command: Command): typeof SETTINGS[number][] {
  return SETTINGS.filter((s) => command.settings === undefined || command.settings.includes(s.key));
}

export function parseCommandArgs(
  command: Command, argv: string[],
): { help: boolean; config: Config; positionals: string[]; switches: Record<string, boolean> } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const s of settingsOf(command)) options[s.flag] = { type: typeof s.defaultValue === 'boolean' ? 'boolean' : 'string' };
  const switchNames = Object.keys(command.switches ?? {});
  for (const name of switchNames) options[name] = { type: 'boolean' };
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const help = values.help === true;
  const switches = Object.fromEntries(switchNames.map((name) => [name, values[name] === true]));
  const flags = Object.fromEntries(Object.entries(values).filter(([k]) => k !== 'help' && !switchNames.includes(k))) as Record<string, string | boolean>;
  return { help, config: help ? { ...DEFAULT_CONFIG } : loadConfig(process.env, flags), positionals, switches };
}

export function commandHelp(command: Command): string {
  const lines = [`Usage: ${command.usage}`, '', command.summary];
  for (const [name, help] of Object.entries(command.switches ?? {})) lines.push(`  --${name.padEnd(32)} ${help}`);
  const settings = settingsOf(command);
  if (settings.length > 0) {
    lines.push('', 'Options (each also read from its environment variable):');
    for (const s of settings) {
      const flag = typeof s.defaultValue === 'boolean' ? `--${s.flag}` : `--${s.flag} <value>`;
      const dflt = s.defaultValue === undefined ? '' : ` (default: ${String(s.defaultValue)})`;
      lines.push(`  ${flag.padEnd(34)} ${s.env}: ${s.help}${dflt}`);
    }
  }
  lines.push(`  ${'-h, --help'.padEnd(34)} show this help`);
  return lines.join('\n');
}
