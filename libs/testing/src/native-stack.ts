/**
 * Typed access to the native stack launcher (docker/local/stack.mjs) for tests that start, stop or
 * slow down real nodes: killing a replica, stopping its SQL thread, capping CPU. The types are the launcher's
 * own declaration (docker/local/stack.d.mts), shared with the benchmark runner.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '#libs/core';
import type * as Launcher from '../../../docker/local/stack.mjs';

export type { SentinelOpts, StackNode } from '../../../docker/local/stack.mjs';
export type NativeStack = typeof Launcher;

export async function nativeStack(): Promise<NativeStack> {
  return (await import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'stack.mjs')).href)) as NativeStack;
}
