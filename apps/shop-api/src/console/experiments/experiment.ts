/**
 * One experiment = one module exporting an `Experiment`: the console's POST /admin/console/experiments/:name
 * and `npm run demo -- console-<name>` both call its `run` with the same context (ExperimentRunner builds it),
 * so the page and the terminal show the same measurement.
 * Rules every experiment follows: bounded in time (the context's deadline and signal) and load (at most
 * `loadConnections` requests in flight), only the project's own nodes (the native stack on loopback), and
 * every change it makes is undone by a function registered with `undo` BEFORE the change: the runner runs
 * them in `finally`, from a watchdog at the hard deadline, and at shutdown, each at most once.
 */
import type { Metrics, RedisClients, Settings } from '#libs/core';
import type { ObjectStorage } from '#libs/storage';
import type { DbNode, DbNodes, OrderShardRouter, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import type { CatalogCache } from '../../catalog/product-cache.provider.js';
import type { TokenService } from '../../auth/token.service.js';
import type { StackControl } from './stack-control.js';

export interface ExperimentContext {
  /** This API instance, on loopback: the experiment's load goes through the real HTTP routes. */
  baseUrl: string;
  signal: AbortSignal;
  /** Epoch ms after which the experiment must stop (the watchdog undoes everything then). */
  deadline: number;
  loadConnections: number;
  config: Settings;
  metrics: Metrics;
  cache: CatalogCache;
  db: DbNodes;
  router: ReplicaRouter;
  monitor: ReplicaMonitor;
  shards: OrderShardRouter;
  stack: StackControl;
  /** Signs access tokens for the users an experiment creates (its load goes through the real, guarded routes). */
  tokens: TokenService;
  /** The object storage the upload route writes to and the workers read from. */
  storage: ObjectStorage;
  redis: RedisClients;
  /** Registers the undo of a change the experiment is about to make (in-process state: dies with the process). */
  undo(what: string, fn: () => Promise<unknown> | unknown): () => Promise<void>;
  /**
   * Registers the undo of a change that outlives this process (a replica's SQL thread, rows): written to a
   * journal on redis-queue first, so an API that was killed mid-run undoes it when it starts again.
   */
  durableUndo(what: string, action: DurableUndo): Promise<() => Promise<void>>;
  progress(message: string): void;
}

/** The changes that survive a crash, and so are journaled: each has one executor (ExperimentRunner.apply). */
export type DurableUndo =
  | { kind: 'start-replica-sql'; port: number }
  | { kind: 'delete-category'; id: number }
  | { kind: 'start-redis-cache' }
  | { kind: 'start-replica'; port: number }
  /** Generated copies an experiment owns on one node (names checked against SCRATCH_TABLE on replay). */
  | { kind: 'drop-tables'; node: string; tables: string[] }
  /** CPU caps put on database nodes (cgroups outlive the process): each node back to the cap it had (null: none). */
  | { kind: 'restore-caps'; caps: Record<string, number | null> }
  /** Users an experiment created, their orders on every shard, their stock reservations, then its category. */
  | { kind: 'delete-order-users'; userIds: string[]; categoryId: number }
  /** A child process an experiment started (checked in /proc to still be that child before it is signalled). */
  | { kind: 'stop-child'; pid: number; tag: string }
  /** An experiment's private shorts queue, its progress streams and its job's files. */
  | { kind: 'delete-shorts-run'; queue: string; jobId: string };

/** The only table names a console experiment creates or drops. */
export const SCRATCH_TABLE = /^console_[a-z0-9]+_[a-z0-9]+_[a-z_]+$/;

/**
 * Caps `nodes` to `cpu` cores for the run; the journaled undo puts back the caps they had (another run's, or none).
 * Returns whether the cap was applied (false, with the reason, where no cgroup cpu controller is writable).
 */
export async function capNodes(ctx: ExperimentContext, nodes: DbNode[], cpu: number): Promise<{ applied: boolean; mechanism: string; reason: string; restore: () => Promise<void> }> {
  const before = await ctx.stack.caps(nodes);
  const restore = await ctx.durableUndo(`CPU caps of ${nodes.map((n) => n.name).join(', ')} back to ${[...new Set(Object.values(before).map((c) => c ?? 'none'))].join(' / ')}`, { kind: 'restore-caps', caps: before });
  return { ...(await ctx.stack.setCpuCap(nodes, cpu)), restore };
}

export interface ExperimentResult {
  name: string;
  /** The headline number, in one sentence. */
  headline: string;
  /** Before/after rows of the panel: one per mode, same keys each. */
  rows: Record<string, string | number | null>[];
  /** Named numbers for tests and the CLI (e.g. dbLoads, staleTokenReads). */
  numbers: Record<string, number | null>;
  doc: string;
  /** The CPU caps the run put on database nodes (cache-modes, replica-scale), for the result's provenance. */
  caps?: { cpu: number; mechanism: string; nodes: string[] };
}

export interface Experiment {
  name: string;
  title: string;
  /** The button's one-line explanation. */
  explain: string;
  doc: string;
  /** Expected duration, seconds (the page shows it on the button). */
  seconds: number;
  run(ctx: ExperimentContext): Promise<ExperimentResult>;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('experiment stopped'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('experiment stopped'));
    }, { once: true });
  });

/** Polls `cond` every 100 ms until true; false when `ms` passed or the run was stopped. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, signal: AbortSignal): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end && !signal.aborted) {
    if (await cond()) return true;
    await sleep(100, signal).catch(() => undefined);
  }
  return false;
}

/** `full` as the docs report it, or the CONSOLE_EXPERIMENT_PRESET=short value (tests, a quick look). */
export function preset<T>(ctx: ExperimentContext, full: T, short: T): T {
  return ctx.config.console.preset === 'short' ? short : full;
}

export function assertTime(ctx: ExperimentContext, needMs: number): void {
  if (ctx.signal.aborted) throw new Error('experiment stopped');
  if (Date.now() + needMs > ctx.deadline) throw new Error('experiment out of time (CONSOLE_EXPERIMENT_MAX_S)');
}
