/**
 * Typed access to the native stack launcher (docker/local/stack.mjs) for tests that start, stop or
 * slow down real nodes: killing a replica, stopping its SQL thread, capping CPU.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '#libs/core';

export interface StackNode {
  name: string;
  role: string;
  port: number;
  [k: string]: unknown;
}

export interface NativeStack {
  up(opts?: Record<string, unknown>): Promise<unknown>;
  down(): Promise<unknown>;
  status(): Promise<StackNode[]>;
  killNode(name: string): Promise<unknown>;
  startNode(name: string): Promise<unknown>;
  stopReplicaSql(name: string): Promise<unknown>;
  startReplicaSql(name: string): Promise<unknown>;
  setCpuCap(cpu: number | 'off' | null, nodes?: string[]): Promise<unknown>;
  nodes: StackNode[];
  /** A Varnish edge (docker/varnish/mallscale.vcl) in `dir` on 127.0.0.1:port in front of `backend` (host:port). */
  startEdge(opts: { port: number; backend: string; dir: string; memory?: string }): Promise<{ pid: number; port: number; url: string; stop: () => Promise<void> }>;
}

export async function nativeStack(): Promise<NativeStack> {
  return (await import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'stack.mjs')).href)) as NativeStack;
}
