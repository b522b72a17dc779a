// Where the native stack lives and the few helpers every part of the launcher shares.
//   STACK_DIR (default <repo>/var/stack): one folder per stack; a second stack (tests, benchmarks) gets its own
//   folder and its own ports (STACK_PORT_<NAME>), so it never touches the shared one.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const STACK_DIR = path.resolve(process.env.STACK_DIR || path.join(REPO, 'var', 'stack'));
export const NODE_TIMEOUT_MS = 60_000;
export const IS_ROOT = process.getuid?.() === 0;

export function fail(msg) { throw new Error(msg); }

/** A node's port: STACK_PORT_<NAME> (replica-1 -> STACK_PORT_REPLICA_1), else its default. */
export const envPort = (name, dflt) => Number(process.env[`STACK_PORT_${name.toUpperCase().replace(/-/g, '_')}`] || dflt);

/** Poll `fn` until it is truthy (a throw counts as not yet); fails after `ms` naming `what`. */
export async function waitFor(what, fn, ms = NODE_TIMEOUT_MS) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) if (await fn().catch(() => false)) return;
  fail(`timed out after ${ms / 1000}s waiting for ${what}`);
}
