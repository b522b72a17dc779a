/**
 * ExperimentRunner: runs one console experiment at a time (a second one answers 409), bounded by
 * CONSOLE_EXPERIMENT_MAX_S, and always undoes what it changed: each experiment registers the undo of a
 * change before making it; the undos run (in reverse, each once) when the run ends or fails (finally),
 * from a watchdog timer at the hard deadline even if the run hangs, and at shutdown. A closed page changes
 * nothing: the run belongs to the server, the page only watches it.
 * Changes that outlive the process (a stopped SQL thread, rows) are also journaled on redis-queue
 * (`<CACHE_PREFIX>console:undo`, never evicted) before they are made: an API killed mid-run (SIGKILL, OOM) undoes
 * them when it starts again, once the dead run's deadline has passed (a live run elsewhere has its own watchdog).
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LOGGER, ApiError, Metrics, RedisClients, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';
import { DbNodes, OrderShardRouter, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { CatalogCache } from '../catalog/product-cache.provider.js';
import { TokenService } from '../auth/token.service.js';
import { deleteOrderUsers } from './experiments/hot-user.js';
import { isConsoleChild } from './experiments/children.js';
import { deleteShortsRun } from './experiments/worker-kill.js';
import { EXPERIMENTS, SCRATCH_TABLE, type DurableUndo, type Experiment, type ExperimentContext, type ExperimentResult } from './experiments/index.js';
import { NativeStackControl, type StackControl } from './experiments/stack-control.js';

export interface RunState {
  id: string;
  name: string;
  state: 'running' | 'done' | 'failed';
  startedAt: number;
  deadline: number;
  endedAt?: number;
  progress: string[];
  /** What was undone, in order, and whether each undo worked. */
  undone: { what: string; ok: boolean; error?: string }[];
  result?: ExperimentResult;
  error?: string;
}

interface Undo {
  what: string;
  fn: () => Promise<unknown> | unknown;
  done: Promise<void> | null;
}

@Injectable()
export class ExperimentRunner implements BeforeApplicationShutdown, OnModuleInit {
  private current: { state: RunState; undos: Undo[]; abort: AbortController; watchdog: NodeJS.Timeout; finished: Promise<void> } | null = null;
  private readonly last = new Map<string, RunState>();
  private seq = 0;
  stack: StackControl = new NativeStackControl();

  constructor(
    private readonly config: Settings,
    private readonly metrics: Metrics,
    private readonly cache: CatalogCache,
    private readonly db: DbNodes,
    private readonly router: ReplicaRouter,
    private readonly monitor: ReplicaMonitor,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly redis: RedisClients,
    private readonly tokens: TokenService,
    private readonly shards: OrderShardRouter,
    private readonly storage: ObjectStorage,
  ) {}

  private get journal(): string {
    return `${this.config.cache.prefix}console:undo`;
  }

  /** The one executor of each journaled undo (in a run, and when recovering after a crash). */
  private async apply(action: DurableUndo): Promise<void> {
    if (action.kind === 'start-redis-cache') {
      await this.stack.startRedisCache(this.config.redis.cacheUrl);
    } else if (action.kind === 'start-replica-sql' || action.kind === 'start-replica') {
      const node = this.db.replicas.find((r) => r.url.port === action.port);
      if (!node) throw new Error(`no configured replica on port ${action.port}`);
      await (action.kind === 'start-replica' ? this.stack.startReplica(node) : this.stack.startReplicaSql(node));
    } else if (action.kind === 'drop-tables') {
      const node = this.db.all().find((n) => n.name === action.node);
      if (!node) throw new Error(`no configured database node ${action.node}`);
      const bad = action.tables.find((t) => !SCRATCH_TABLE.test(t));
      if (bad) throw new Error(`refusing to drop ${bad}: not a console experiment's table`);
      await (await this.db.ddl(node)).query(`DROP TABLE IF EXISTS ${action.tables.map((t) => `\`${t}\``).join(', ')}`);
    } else if (action.kind === 'restore-caps') {
      for (const [name, cpu] of Object.entries(action.caps)) {
        const node = this.db.all().find((n) => n.name === name);
        if (node) await this.stack.setCpuCap([node], cpu);
      }
    } else if (action.kind === 'stop-child') {
      if (await isConsoleChild(action.pid, action.tag)) process.kill(action.pid, 'SIGKILL');
    } else if (action.kind === 'delete-shorts-run') {
      await deleteShortsRun({ storage: this.storage, redis: this.redis }, action.queue, action.jobId);
    } else if (action.kind === 'delete-order-users') {
      await deleteOrderUsers(this.db, action.userIds);
      await this.deleteCategory(action.categoryId);
    } else {
      await this.deleteCategory(action.id);
    }
  }

  private async deleteCategory(id: number): Promise<void> {
    await this.db.primary.ds.query('DELETE FROM products WHERE category_id = ?', [id]);
    await this.db.primary.ds.query('DELETE FROM categories WHERE id = ?', [id]);
  }

  /** At start-up: undo what a run of a killed process left journaled, at its deadline at the latest. */
  async onModuleInit(): Promise<void> {
    if (!this.config.console.experiments) return;
    const entries = await this.redis.queue.hgetall(this.journal).catch(() => ({}) as Record<string, string>);
    for (const [field, raw] of Object.entries(entries)) {
      const e = JSON.parse(raw) as { what: string; action: DurableUndo; deadline: number };
      const recover = async () => {
        try {
          await this.apply(e.action);
          await this.redis.queue.hdel(this.journal, field);
          this.logger.warn({ undo: e.what }, 'console experiment: undone after a crashed run');
        } catch (err) {
          this.logger.error({ undo: e.what, err: (err as Error).message }, 'console experiment: could not undo a crashed run');
        }
      };
      const wait = e.deadline - Date.now();
      if (wait <= 0) await recover();
      else setTimeout(() => void recover(), wait).unref();
    }
  }

  list(): Pick<Experiment, 'name' | 'title' | 'explain' | 'doc' | 'seconds'>[] {
    return [...EXPERIMENTS.values()].map(({ name, title, explain, doc, seconds }) => ({ name, title, explain, doc, seconds }));
  }

  status(): { running: RunState | null; last: RunState[] } {
    return { running: this.current?.state ?? null, last: [...this.last.values()] };
  }

  get(name: string): RunState | undefined {
    return this.current?.state.name === name ? this.current.state : this.last.get(name);
  }

  /** Starts `name` against this instance at `baseUrl`; resolves once it is running (the run goes on). */
  start(name: string, baseUrl: string): { state: RunState; finished: Promise<void> } {
    const exp = EXPERIMENTS.get(name);
    if (!exp) throw ApiError.notFound('experiment');
    if (this.current) throw ApiError.conflict(`experiment ${this.current.state.name} is running: one at a time`, { running: this.current.state.name });
    const startedAt = Date.now();
    const deadline = startedAt + this.config.console.maxRunS * 1000;
    const state: RunState = { id: `${name}-${++this.seq}`, name, state: 'running', startedAt, deadline, progress: [], undone: [] };
    const abort = new AbortController();
    const undos: Undo[] = [];
    const runUndo = (u: Undo): Promise<void> =>
      (u.done ??= (async () => {
        try {
          await u.fn();
          state.undone.push({ what: u.what, ok: true });
        } catch (e) {
          state.undone.push({ what: u.what, ok: false, error: (e as Error).message });
          this.logger.error({ experiment: name, undo: u.what, err: (e as Error).message }, 'console experiment: an undo failed');
        }
      })());
    const undoAll = async () => {
      for (const u of [...undos].reverse()) await runUndo(u);
    };
    const ctx: ExperimentContext = {
      baseUrl,
      signal: abort.signal,
      deadline,
      loadConnections: this.config.console.loadConnections,
      config: this.config,
      metrics: this.metrics,
      cache: this.cache,
      db: this.db,
      router: this.router,
      monitor: this.monitor,
      shards: this.shards,
      storage: this.storage,
      redis: this.redis,
      stack: this.stack,
      tokens: this.tokens,
      undo: (what, fn) => {
        const u: Undo = { what, fn, done: null };
        undos.push(u);
        return () => runUndo(u);
      },
      durableUndo: async (what, action) => {
        const field = `${state.id}:${randomUUID()}`;
        await this.redis.queue.hset(this.journal, field, JSON.stringify({ what, action, deadline }));
        const u: Undo = {
          what,
          fn: async () => {
            await this.apply(action);
            await this.redis.queue.hdel(this.journal, field);
          },
          done: null,
        };
        undos.push(u);
        return () => runUndo(u);
      },
      progress: (m) => {
        state.progress.push(m);
        this.logger.info({ experiment: name }, m);
      },
    };
    // The watchdog: at the hard deadline the run is told to stop and everything is undone, even if it hangs.
    const watchdog = setTimeout(() => {
      abort.abort();
      ctx.progress(`watchdog: ${this.config.console.maxRunS} s reached, undoing`);
      void undoAll();
    }, deadline - startedAt);
    watchdog.unref();
    const finished = (async () => {
      // The run reads as `running` until its undos are done: a page or test that sees `done` sees the stack restored.
      let outcome: { result: ExperimentResult } | { error: string };
      try {
        outcome = { result: await exp.run(ctx) };
      } catch (e) {
        outcome = { error: (e as Error).message };
      }
      try {
        await undoAll();
      } finally {
        clearTimeout(watchdog);
        state.endedAt = Date.now();
        if ('result' in outcome) {
          state.result = outcome.result;
          state.state = 'done';
        } else {
          state.state = 'failed';
          state.error = outcome.error;
        }
        if (state.state === 'done' && state.undone.some((u) => !u.ok)) {
          state.state = 'failed';
          state.error = `could not undo: ${state.undone.filter((u) => !u.ok).map((u) => u.what).join(', ')}`;
        }
        this.last.set(name, state);
        this.current = null;
      }
    })();
    this.current = { state, undos, abort, watchdog, finished };
    return { state, finished };
  }

  /** Shutdown, before the pools close: stop the run and wait for its undos (a stopped replica is started again). */
  async beforeApplicationShutdown(): Promise<void> {
    const c = this.current;
    if (!c) return;
    c.abort.abort();
    await c.finished;
  }
}
