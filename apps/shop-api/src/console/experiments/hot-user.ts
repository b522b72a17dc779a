/**
 * Q3.b at run time: sharding spreads USERS, not load. The same POST /orders load (the real, guarded route:
 * stock reserved on the catalog, the order written to the user's shard) from ONE user, then from SPREAD users:
 * a user's orders all live on the shard of the user's bucket, so one hot user loads one shard while the
 * other idles; spread users split the writes by the bucket map. Counted by the server: orders_created_total
 * per shard (the /metrics counter) and each shard's own Com_insert. The users, their orders, reservations,
 * products and category are the experiment's own, deleted afterwards (journaled).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent } from 'node:http';
import type { DbNodes } from '#libs/db';
import { byLabel } from '../counters.js';
import { assertTime, preset, until, type Experiment, type ExperimentContext } from './experiment.js';
import { send } from './load.js';

const SPREAD = 32;
const PRODUCTS = 10;
const WARM = 1000;
const PHASE = 5000;

/** Every trace of the given users: their orders (and items, idempotency keys) on every shard, reservations, the users. */
export async function deleteOrderUsers(db: DbNodes, userIds: string[]): Promise<void> {
  const ids = userIds.map((u) => String(BigInt(u))); // numbers only
  if (!ids.length) return;
  const list = ids.join(',');
  for (const shard of db.shards) {
    if (!shard.ds.isInitialized) continue;
    await shard.ds.query(`DELETE i FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.user_id IN (${list})`);
    await shard.ds.query(`DELETE FROM orders WHERE user_id IN (${list})`);
    await shard.ds.query(`DELETE FROM idempotency_keys WHERE user_id IN (${list})`);
  }
  await db.primary.ds.query(`DELETE FROM stock_reservations WHERE user_id IN (${list})`);
  await db.primary.ds.query(`DELETE FROM users WHERE id IN (${list})`);
}

async function comInsert(ctx: ExperimentContext): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of ctx.db.shards) {
    const rows = (await s.ds.query("SHOW GLOBAL STATUS LIKE 'Com_insert'").catch(() => [])) as { Value: string }[];
    out[s.name] = Number(rows[0]?.Value ?? 0);
  }
  return out;
}

export const hotUser: Experiment = {
  name: 'hot-user',
  title: 'Q3.b · one hot user vs spread users',
  explain: `The same POST /orders load from one user, then from ${SPREAD} users: a user's orders all go to the shard of its bucket, so one hot user loads one shard — orders/s per shard, counted by the server and the shards.`,
  doc: 'docs/q3b-sharding-cautions.md',
  seconds: 2 * (WARM + PHASE) / 1000 + 3,
  async run(ctx) {
    if (ctx.db.shards.length < 2) throw new Error('one order shard configured: nothing to compare');
    const WARM_MS = preset(ctx, WARM, 500);
    const PHASE_MS = preset(ctx, PHASE, 2000);
    const run = randomBytes(3).toString('hex');
    const code = `console-hot-${run}`;
    const cat = await ctx.db.primary.ds.query("INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'console experiment', '{}')", [code]);
    const categoryId = Number(cat.insertId);
    const userIds: string[] = [];
    // The users are created first and journaled right after (with their ids): a crash in between leaves users without orders.
    const emails = Array.from({ length: SPREAD + 1 }, (_, i) => `console-hot-${run}-${i}@example.test`);
    await ctx.db.primary.ds.query(`INSERT INTO users (email, password_hash, role) VALUES ${emails.map(() => "(?, '!', 'user')").join(', ')}`, emails);
    const users = (await ctx.db.primary.ds.query(`SELECT id FROM users WHERE email IN (${emails.map(() => '?').join(',')}) ORDER BY id`, emails)) as { id: string }[];
    userIds.push(...users.map((u) => String(u.id)));
    const cleanup = await ctx.durableUndo('delete the experiment’s users, their orders and its category', { kind: 'delete-order-users', userIds, categoryId });
    const rows = Array.from({ length: PRODUCTS }, (_, i) => [categoryId, `console hot-user product ${i}`, 100 + i, 1_000_000_000]);
    await ctx.db.primary.ds.query(`INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES ${rows.map(() => "(?, ?, ?, ?, '{}')").join(', ')}`, rows.flat());
    const products = ((await ctx.db.primary.ds.query('SELECT id FROM products WHERE category_id = ? ORDER BY id', [categoryId])) as { id: string }[]).map((p) => String(p.id));
    // The order route reads products on a replica: wait until each replica in rotation has them.
    for (const r of ctx.db.replicas.filter((x) => x.ds.isInitialized && ctx.monitor.health(x.name)?.inRotation)) {
      await until(async () => Number(((await r.ds.query('SELECT COUNT(*) AS n FROM products WHERE category_id = ?', [categoryId])) as { n: string }[])[0]?.n) === PRODUCTS, 10_000, ctx.signal);
    }
    const tokens = await Promise.all(userIds.map((id) => ctx.tokens.issueAccess(id, 0)));
    const hot = { id: userIds[0], token: tokens[0] };
    const spread = userIds.slice(1).map((id, i) => ({ id, token: tokens[i + 1] }));

    const base = new URL(ctx.baseUrl);
    const phase = async (label: string, who: () => { token: string }) => {
      const agent = new Agent({ keepAlive: true, maxSockets: ctx.loadConnections });
      const load = async (ms: number) => {
        const end = performance.now() + ms;
        const st: Record<string, number> = {};
        await Promise.all(
          Array.from({ length: ctx.loadConnections }, async () => {
            while (performance.now() < end && !ctx.signal.aborted) {
              const u = who();
              const productId = products[Math.floor(Math.random() * products.length)];
              const r = await send(agent, base, { method: 'POST', path: '/orders', headers: { authorization: `Bearer ${u.token}`, 'idempotency-key': randomUUID() }, body: { items: [{ productId, quantity: 1 }] } }).catch(() => ({ status: 0 }));
              st[r.status] = (st[r.status] ?? 0) + 1;
            }
          }),
        );
        return st;
      };
      ctx.progress(`${label}: ${PHASE_MS / 1000} s of POST /orders, ${ctx.loadConnections} in flight`);
      await load(WARM_MS);
      const o0 = await byLabel(ctx.metrics, 'orders_created_total', 'shard');
      const i0 = await comInsert(ctx);
      const t0 = performance.now();
      const st = await load(PHASE_MS);
      const s = (performance.now() - t0) / 1000;
      const o1 = await byLabel(ctx.metrics, 'orders_created_total', 'shard');
      const i1 = await comInsert(ctx);
      agent.destroy();
      const perShard = Object.fromEntries(ctx.db.shards.map((n) => [n.name, Math.round(((o1[n.name] ?? 0) - (o0[n.name] ?? 0)) / s)]));
      const inserts = Object.fromEntries(ctx.db.shards.map((n) => [n.name, Math.round(((i1[n.name] ?? 0) - (i0[n.name] ?? 0)) / s)]));
      const total = Object.values(perShard).reduce((a, b) => a + b, 0);
      const busiest = Math.max(...Object.values(perShard));
      const row: Record<string, string | number | null> = { load: label, 'orders/s': total };
      for (const n of ctx.db.shards) row[`orders/s on ${n.name} (orders_created_total)`] = perShard[n.name];
      for (const n of ctx.db.shards) row[`INSERTs/s on ${n.name} (Com_insert)`] = inserts[n.name];
      row['busiest shard share'] = total ? `${Math.round((100 * busiest) / total)} %` : '—';
      row['non-2xx'] = Object.entries(st).filter(([k]) => !k.startsWith('2')).reduce((a, [, v]) => a + v, 0);
      return { row, total, busiestShare: total ? Math.round((100 * busiest) / total) : null, perShard };
    };
    assertTime(ctx, 2 * (WARM_MS + PHASE_MS) + 3000);
    const hotShard = ctx.db.shards[(await ctx.shards.shardFor(hot.id)).shard]?.name ?? '?';
    const a = await phase(`one user (#${hot.id}, bucket on ${hotShard})`, () => hot);
    let k = 0;
    const b = await phase(`${SPREAD} users round-robin`, () => spread[k++ % spread.length]);
    await cleanup();
    return {
      name: this.name,
      doc: this.doc,
      rows: [a.row, b.row],
      numbers: { hotUserId: Number(hot.id), hotOrdersPerS: a.total, spreadOrdersPerS: b.total, hotBusiestSharePct: a.busiestShare, spreadBusiestSharePct: b.busiestShare, ...Object.fromEntries(Object.entries(a.perShard).map(([n, v]) => [`hot_${n}`, v])), ...Object.fromEntries(Object.entries(b.perShard).map(([n, v]) => [`spread_${n}`, v])) },
      headline: `One hot user puts ${a.busiestShare ?? '—'} % of its ${a.total} orders/s on one shard (${hotShard}); ${SPREAD} users put ${b.busiestShare ?? '—'} % of ${b.total} orders/s on the busiest. Hashing users to buckets spreads users, not one heavy user: its shard is its ceiling.`,
    };
  },
};
