import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SETTINGS, loadConfig, DEFAULT_CONFIG, type Config } from '../../src/config.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Setting flags this command accepts (all of them when undefined). */
  settings?: readonly (keyof Config)[];
  /** Boolean flags of the command itself (not settings), with their help. */
  switches?: Readonly<Record<string, string>>;
  /** Flags of the command itself that take a value (`multiple`: may be given more than once), with their help. */
  options?: Readonly<Record<string, { help: string; multiple?: boolean }>>;
  run(config: Config, positionals: string[], switches: Readonly<Record<string, boolean>>, options: Readonly<Record<string, string[]>>): Promise<number>;
}

function settingsOf(command: Command): typeof SETTINGS[number][] {
  return SETTINGS.filter((s) => command.settings === undefined || command.settings.includes(s.key));
}

export function parseCommandArgs(
  command: Command, argv: string[],
): { help: boolean; config: Config; positionals: string[]; switches: Record<string, boolean>; options: Record<string, string[]> } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const s of settingsOf(command)) options[s.flag] = { type: typeof s.defaultValue === 'boolean' ? 'boolean' : 'string' };
  const switchNames = Object.keys(command.switches ?? {});
  for (const name of switchNames) options[name] = { type: 'boolean' };
  const optionNames = Object.keys(command.options ?? {});
  for (const [name, o] of Object.entries(command.options ?? {})) options[name] = { type: 'string', multiple: o.multiple === true };
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const help = values.help === true;
  const switches = Object.fromEntries(switchNames.map((name) => [name, values[name] === true]));
  const own = Object.fromEntries(optionNames.flatMap((name) => {
    const value = values[name];
    return value === undefined ? [] : [[name, (Array.isArray(value) ? value : [value]).map(String)]];
  }));
  const flags = Object.fromEntries(Object.entries(values).filter(([k]) => k !== 'help' && !switchNames.includes(k) && !optionNames.includes(k))) as Record<string, string | boolean>;
  return { help, config: help ? { ...DEFAULT_CONFIG } : loadConfig(process.env, flags), positionals, switches, options: own };
}

export function commandHelp(command: Command): string {
  const lines = [`Usage: ${command.usage}`, '', command.summary];
  for (const [name, help] of Object.entries(command.switches ?? {})) lines.push(`  --${name.padEnd(32)} ${help}`);
  for (const [name, o] of Object.entries(command.options ?? {})) lines.push(`  ${`--${name} <value>`.padEnd(34)} ${o.help}${o.multiple ? ' (may be repeated)' : ''}`);
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
