/**
 * Q3: a replica dies under read load. The cache is off for the run (every read goes to the database through
 * ReplicaRouter), the last replica in rotation is SIGKILLed (the native stack's node): a read that was on it
 * is retried on another node, the monitor takes it out of rotation, reads keep answering (0 failed). Then it
 * is started again, resumes replicating from its datadir, and rejoins. Counted by the server:
 * db_reads_total per node and db_read_retries_total.
 */
import { ApiError } from '#libs/core';
import { byLabel, total } from '../counters.js';
import { assertTime, until, type Experiment, type ExperimentContext } from './experiment.js';
import { runLoad, zipf } from './load.js';
import { productIds } from './server-counters.js';

const PHASE_MS = 4000;
const REJOIN_MS = 30_000;

export const replicaKill: Experiment = {
  name: 'replica-kill',
  title: 'Q3 · kill a replica under load',
  explain: 'Cache off, a Zipf read load through ReplicaRouter; a replica’s server is SIGKILLed: reads retry on another node and keep answering (0 failed), then it starts again and rejoins.',
  doc: 'docs/q3-replication.md',
  seconds: 3 * PHASE_MS / 1000 + 8,
  async run(ctx: ExperimentContext) {
    const ids = await productIds(ctx.db.primary, 10_000);
    if (!ids.length) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    const target = [...ctx.db.replicas].reverse().find((r) => r.ds.isInitialized && ctx.monitor.health(r.name)?.inRotation);
    if (!target) throw ApiError.conflict('no replica is in rotation right now: nothing to kill');
    const configured = ctx.cache.products.opts.mode;
    const restore = ctx.undo(`cache mode back to ${configured}`, () => ctx.cache.setMode(configured));
    ctx.cache.setMode('off');
    const rank = zipf(ids.length, 1);
    const paths = () => `/products/${ids[rank()]}`;
    const phase = async (label: string) => {
      const reads0 = await byLabel(ctx.metrics, 'db_reads_total', 'node');
      const retries0 = await total(ctx.metrics, 'db_read_retries_total');
      const r = await runLoad({ baseUrl: ctx.baseUrl, paths, connections: ctx.loadConnections, ms: PHASE_MS, signal: ctx.signal });
      const reads = await byLabel(ctx.metrics, 'db_reads_total', 'node');
      const on = (n: string) => (reads[n] ?? 0) - (reads0[n] ?? 0);
      const row: Record<string, string | number | null> = { phase: label, 'req/s': r.rps, 'p99 ms': r.p99Ms, requests: r.requests, 'failed reads': r.errors, 'retried on another node': (await total(ctx.metrics, 'db_read_retries_total')) - retries0 };
      for (const n of [ctx.db.primary, ...ctx.db.replicas]) row[`reads on ${n.name}`] = on(n.name);
      return { row, errors: r.errors, requests: r.requests, onTarget: on(target.name) };
    };
    assertTime(ctx, 3 * PHASE_MS + REJOIN_MS);
    ctx.progress(`cache off, every replica up: ${PHASE_MS / 1000} s of Zipf(1) load`);
    const before = await phase('every replica up');
    const restart = await ctx.durableUndo(`start ${target.name} again`, { kind: 'start-replica', port: target.url.port });
    ctx.progress(`SIGKILL ${target.name}; the same load`);
    await ctx.stack.killReplica(target);
    const during = await phase(`${target.name} killed`);
    ctx.progress(`starting ${target.name} again; waiting for it to rejoin`);
    const t0 = Date.now();
    await restart();
    const back = await until(() => ctx.monitor.health(target.name)?.inRotation === true, REJOIN_MS, ctx.signal);
    const rejoinMs = back ? Date.now() - t0 : null;
    const after = await phase(`${target.name} started again`);
    await restore();
    return {
      name: this.name,
      doc: this.doc,
      rows: [before.row, during.row, { ...after.row, 'rejoined after ms': rejoinMs }],
      numbers: { failedDuring: during.errors, requestsDuring: during.requests, readsOnKilledDuring: during.onTarget, readsOnTargetAfter: after.onTarget, rejoinMs },
      headline: `With ${target.name} killed, ${during.requests} reads answered with ${during.errors} failed; it rejoined ${rejoinMs ?? '—'} ms after its restart and served ${after.onTarget} reads after.`,
    };
  },
};
