/**
 * Q3: stop a replica's SQL thread (real, growing lag). ReplicaMonitor takes it out of rotation; reads
 * that carry the write's consistency token stay fresh (they never land on it, or wait, or go to the
 * primary); naive reads (round-robin over every configured replica, no token, what a lag-unaware router
 * does) read it and go stale, counted. Then the thread is started again and the replica rejoins.
 * The writes are rows of a category of its own, deleted at the end like the category.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '#libs/core';
import { ReplicaRouter, type DbNode } from '#libs/db';
import { assertTime, until, type Experiment, type ExperimentContext } from './experiment.js';

const CYCLE_MS = 6000;
const MAX_CYCLES = 300;
const LEAVE_MS = 15_000;
const REJOIN_MS = 20_000;

interface Tally {
  cycles: number;
  tokenStale: number;
  tokenOnStopped: number;
  naiveStale: number;
  naiveOnStopped: number;
}

async function cycles(ctx: ExperimentContext, categoryId: number, stopped: DbNode, naive: ReplicaRouter, ms: number, max: number): Promise<Tally> {
  const t: Tally = { cycles: 0, tokenStale: 0, tokenOnStopped: 0, naiveStale: 0, naiveOnStopped: 0 };
  // Paced: at most `max` cycles spread over the whole `ms`, so the phase lasts `ms` on any machine (a fast box
  // would otherwise finish its cycles in a fraction of a second and resume the replica before anyone sees it out).
  const start = Date.now();
  const end = start + ms;
  while (Date.now() < end && t.cycles < max && !ctx.signal.aborted) {
    const due = start + (t.cycles * ms) / max;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const name = `console-ryw-${randomUUID()}`;
    const { value: id, token } = await ctx.router.write(async (on) => Number((await on.query("INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, ?, 1, '{}')", [categoryId, name])).insertId));
    const select = (on: { query: (sql: string, p: unknown[]) => Promise<unknown> }) => on.query('SELECT name FROM products WHERE id = ?', [id]) as Promise<{ name: string }[]>;
    const byToken = await ctx.router.read(async (on, node) => ({ rows: await select(on), node: node.name }), token);
    const byNaive = await naive.read(async (on, node) => ({ rows: await select(on), node: node.name }), null);
    t.cycles++;
    if (byToken.rows[0]?.name !== name) t.tokenStale++;
    if (byToken.node === stopped.name) t.tokenOnStopped++;
    if (byNaive.rows[0]?.name !== name) t.naiveStale++;
    if (byNaive.node === stopped.name) t.naiveOnStopped++;
  }
  return t;
}

export const replicaLag: Experiment = {
  name: 'replica-lag',
  title: 'Q3 · stop a replica’s SQL thread',
  explain: 'replica-1 stops applying the binlog: it leaves rotation, reads with the consistency token stay fresh, naive round-robin reads go stale (counted); then it resumes and rejoins.',
  doc: 'docs/q3-replication.md',
  seconds: 2 + CYCLE_MS / 1000 * 2 + 5,
  async run(ctx) {
    const target = ctx.db.replicas.find((r) => r.ds.isInitialized && ctx.monitor.health(r.name)?.inRotation);
    if (!target) throw ApiError.conflict('no replica is in rotation right now: nothing to take out');
    const naive = new ReplicaRouter(ctx.db, null, { waitMs: 0 });
    const code = `console-${randomUUID().slice(0, 8)}`;
    const res = await ctx.db.primary.ds.query("INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'console experiment', '{}')", [code]);
    // From here on the rows and the category go whatever happens, even if this process dies.
    const cleanup = await ctx.durableUndo('delete the experiment’s rows and category', { kind: 'delete-category', id: Number(res.insertId) });
    const categoryId = Number(res.insertId);

    ctx.progress(`both replicas replicating: write-then-read cycles for ${CYCLE_MS / 2000} s`);
    const before = await cycles(ctx, categoryId, target, naive, CYCLE_MS / 2, MAX_CYCLES / 2);

    assertTime(ctx, LEAVE_MS + CYCLE_MS + REJOIN_MS);
    const resume = await ctx.durableUndo(`start the SQL thread of ${target.name}`, { kind: 'start-replica-sql', port: target.url.port });
    ctx.progress(`STOP SLAVE SQL_THREAD on ${target.name}; waiting for ReplicaMonitor to take it out of rotation`);
    const t0 = Date.now();
    await ctx.stack.stopReplicaSql(target);
    const left = await until(() => ctx.monitor.health(target.name)?.inRotation === false, LEAVE_MS, ctx.signal);
    const leftMs = left ? Date.now() - t0 : null;
    ctx.progress(`${target.name} ${left ? `out of rotation after ${leftMs} ms` : 'still in rotation'}: write-then-read cycles for ${CYCLE_MS / 1000} s`);
    const during = await cycles(ctx, categoryId, target, naive, CYCLE_MS, MAX_CYCLES);

    ctx.progress(`START SLAVE SQL_THREAD on ${target.name}; waiting for it to rejoin`);
    const t1 = Date.now();
    await resume();
    const back = await until(() => ctx.monitor.health(target.name)?.inRotation === true, REJOIN_MS, ctx.signal);
    const rejoinMs = back ? Date.now() - t1 : null;
    await cleanup();
    const row = (phase: string, t: Tally) => ({ phase, cycles: t.cycles, 'stale token reads': t.tokenStale, 'token reads on stopped replica': t.tokenOnStopped, 'stale naive reads': t.naiveStale, 'naive reads on stopped replica': t.naiveOnStopped });
    return {
      name: this.name,
      doc: this.doc,
      rows: [row('both replicating', before), row(`${target.name} SQL thread stopped`, during), { phase: `${target.name} resumed`, 'left rotation after ms': leftMs, 'rejoined after ms': rejoinMs }],
      numbers: { cycles: during.cycles, staleTokenReads: during.tokenStale, tokenReadsOnStopped: during.tokenOnStopped, staleNaiveReads: during.naiveStale, leftRotationMs: leftMs, rejoinMs },
      headline: `With ${target.name}'s SQL thread stopped: ${during.tokenStale} stale reads of ${during.cycles} with the token, ${during.naiveStale} of ${during.cycles} naive; it left rotation in ${leftMs ?? '—'} ms and rejoined ${rejoinMs ?? '—'} ms after resuming.`,
    };
  },
};
