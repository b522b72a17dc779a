/**
 * The native stack launcher (docker/local/stack.mjs) for the runner and the scenarios, typed by its own
 * declaration (docker/local/stack.d.mts). Always the repository's copy, loaded at run time: the launcher finds
 * STACK_DIR relative to its own file, so it is never compiled into dist/.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '#libs/core';
import type * as Launcher from '../../docker/local/stack.mjs';

export type Stack = typeof Launcher;

export async function launcher(): Promise<Stack> {
  return (await import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'stack.mjs')).href)) as Stack;
}
