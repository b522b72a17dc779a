/**
 * The command-line tools' argument parsing: node's util.parseArgs (strict: an unknown option or a missing
 * value is refused), reported as one line plus the usage, exit code 2, never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseCli<O extends NonNullable<ParseArgsConfig['options']>>(usage: string, options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: process.argv.slice(2), options, allowPositionals, strict: true });
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
}

/** A non-negative integer option (parseArgs only knows strings and booleans). */
export function intOption(value: string | undefined, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} needs a non-negative integer, not '${value}'`);
    process.exit(2);
  }
  return n;
}
