/**
 * Processes an experiment starts (a shorts-worker to kill, a second shop-api for the fleet stampede): children
 * of this API from dist, with this API's environment plus a marker `MALLSCALE_CONSOLE_CHILD=<tag>`. Each is
 * journaled (pid + tag) before the run goes on, so an API killed mid-run stops them when it starts again;
 * the marker is checked in /proc before a journaled pid is signalled (the pid may have been reused since).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError, repoRoot } from '#libs/core';
import { existsSync } from 'node:fs';
import type { ExperimentContext } from './experiment.js';

export const CHILD_MARKER = 'MALLSCALE_CONSOLE_CHILD';

/** Is `pid` a process this console started with marker `tag`? */
export async function isConsoleChild(pid: number, tag: string): Promise<boolean> {
  try {
    const env = await readFile(`/proc/${pid}/environ`, 'utf8');
    return env.split('\0').includes(`${CHILD_MARKER}=${tag}`);
  } catch {
    return false;
  }
}

/** Starts `dist/<entry>` with this process's environment + `env`; stopped (SIGKILL) by the run's undo at the latest. */
export async function startChild(ctx: ExperimentContext, label: string, entry: string, tag: string, env: Record<string, string>): Promise<ChildProcess> {
  const main = join(repoRoot(), 'dist', entry);
  if (!existsSync(main)) throw ApiError.conflict(`dist/${entry} is not built: run npm run build`);
  const child = spawn(process.execPath, [main], {
    cwd: repoRoot(),
    env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'warn', ...env, [CHILD_MARKER]: tag },
    stdio: ['ignore', process.env.CONSOLE_CHILD_OUTPUT === 'inherit' ? 'inherit' : 'ignore', 'inherit'],
  });
  const pid = child.pid;
  if (!pid) throw new Error(`${label} did not start`);
  child.on('error', () => undefined);
  await ctx.durableUndo(`stop ${label} (pid ${pid})`, { kind: 'stop-child', pid, tag });
  return child;
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

