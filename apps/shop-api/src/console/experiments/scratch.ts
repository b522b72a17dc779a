/**
 * Scratch copies: tables a console experiment generates for itself on one database node, named
 * console_<experiment>_<run>_<table>, dropped when the run ends (a durable undo: an API killed mid-run drops
 * them when it starts again). They live on an order shard, created through the DDL account: a shard has no
 * replicas, so nothing replays the generated rows and the catalog replicas the rest of the stack reads from
 * are not flooded. One session (one connection) measures, so its Handler_read_* counters are the server's
 * own count of the rows each statement examined.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '#libs/core';
import type { DbNode } from '#libs/db';
import type { QueryRunner } from 'typeorm';
import type { ExperimentContext } from './experiment.js';

export interface Scratch {
  node: DbNode;
  mariadb: boolean;
  /** Logical name → the real table name. */
  t: Record<string, string>;
  session: QueryRunner;
  /** Runs `sql` on the session: the rows its Handler_read_* counters moved by, and the wall time. */
  examined(sql: string, params?: unknown[]): Promise<{ rows: number; ms: number; result: any }>;
}

export async function scratchTables(ctx: ExperimentContext, tag: string, tables: string[]): Promise<Scratch> {
  const node = ctx.db.shards[0];
  if (!node) throw ApiError.conflict('no order shard configured: the scratch copies live on shard-0');
  const run = randomBytes(3).toString('hex');
  const t = Object.fromEntries(tables.map((name) => [name, `console_${tag}_${run}_${name}`]));
  const ds = await ctx.db.ddl(node);
  const session = ds.createQueryRunner();
  await session.connect();
  ctx.undo('release the measuring session', () => session.release());
  // Registered before any CREATE: whatever happens from here, the copies go.
  await ctx.durableUndo(`drop the generated tables on ${node.name}`, { kind: 'drop-tables', node: node.name, tables: Object.values(t) });
  await session.query("SET SESSION time_zone = '+00:00'");
  const handlerReads = async () => ((await session.query("SHOW SESSION STATUS LIKE 'Handler_read%'")) as { Value: string }[]).reduce((a, r) => a + Number(r.Value), 0);
  // What reading the counters costs the counters themselves (the SHOW reads rows too), subtracted below.
  const h0 = await handlerReads();
  const overhead = (await handlerReads()) - h0;
  return {
    node,
    mariadb: node.dialect.name === 'mariadb',
    t,
    session,
    async examined(sql, params = []) {
      const before = await handlerReads();
      const t0 = performance.now();
      const result = await session.query(sql, params);
      const ms = Math.round((performance.now() - t0) * 100) / 100;
      return { rows: (await handlerReads()) - before - overhead, ms, result };
    },
  };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
