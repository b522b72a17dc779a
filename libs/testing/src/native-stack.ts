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

export interface SentinelOpts {
  dir?: string;
  ownPrimaries?: { cache: number; queue: number };
  quiet?: boolean;
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
  /** Start the optional third order shard (shard-2, :3312); idempotent. */
  addShard(opts?: Record<string, unknown>): Promise<StackNode & { state: string }>;
  nodes: StackNode[];
  /** Redis Sentinel groups (a private one: `{ dir, ownPrimaries: { cache, queue } }`, so no shared node is killed). */
  upSentinel(opts?: SentinelOpts): Promise<StackNode[]>;
  sentinelStatus(opts?: SentinelOpts): Promise<StackNode[]>;
  sentinelMaster(masterName: string, opts?: SentinelOpts): Promise<number | null>;
  killSentinelNode(name: string, opts?: SentinelOpts): Promise<number | null>;
  downSentinel(opts?: SentinelOpts & { purge?: boolean }): Promise<void>;
  /** A Varnish edge (docker/varnish/mallscale.vcl) in `dir` on 127.0.0.1:port in front of `backend` (host:port). */
  startEdge(opts: { port: number; backend: string; dir: string; memory?: string }): Promise<{ pid: number; port: number; url: string; stop: () => Promise<void> }>;
}

export async function nativeStack(): Promise<NativeStack> {
  return (await import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'stack.mjs')).href)) as NativeStack;
}
