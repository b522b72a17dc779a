/**
 * BucketFence: the per-bucket owner check every order write and read makes ON the shard, inside its own
 * transaction, so a router with an old bucket map can never write a moved bucket on its old shard nor read
 * half of it. The state lives in the shard's bucket_fence table (migration shard/0140): no row = owned.
 *
 * Writes read the bucket's row with a shared lock as their first statement. The mover's freeze is an UPDATE
 * of that row: it waits for the writes in flight (their shared locks) and every later write then sees
 * `frozen`. While a bucket is being copied away (`logging`), the write also records its order in
 * bucket_changes, in the same transaction, for the mover's catch-up.
 */
import type { EntityManager } from 'typeorm';
import type { SqlDialect } from './dialect.js';

type Runner = Pick<EntityManager, 'query'>;

export type FenceState = 'owned' | 'incoming' | 'frozen' | 'moved';

/** This shard does not (or not yet, or not at the moment) own the bucket: re-route with a fresh map and retry. */
export class BucketFenced extends Error {
  constructor(
    readonly bucket: number,
    readonly shard: number,
    readonly state: FenceState,
    /** The map version the shard recorded with the state (0 when none). */
    readonly mapVersion: number,
  ) {
    super(`bucket ${bucket} is ${state} on shard-${shard}`);
  }
}

async function fenceRow(on: Runner, bucket: number, lock: string): Promise<{ state: FenceState; logging: boolean; mapVersion: number }> {
  const rows = await on.query(`SELECT state, logging, map_version FROM bucket_fence WHERE bucket = ?${lock ? ` ${lock}` : ''}`, [bucket]);
  if (!rows.length) return { state: 'owned', logging: false, mapVersion: 0 };
  return { state: rows[0].state, logging: Number(rows[0].logging) === 1, mapVersion: Number(rows[0].map_version) };
}

/**
 * Inside a write transaction, first: may this shard write `bucket`? Throws BucketFenced otherwise; returns
 * whether the write must record itself in bucket_changes (logChange).
 */
export async function checkWriteFence(em: Runner, dialect: SqlDialect, shard: number, bucket: number): Promise<{ logging: boolean }> {
  const f = await fenceRow(em, bucket, dialect.sharedLock);
  if (f.state !== 'owned') throw new BucketFenced(bucket, shard, f.state, f.mapVersion);
  return { logging: f.logging };
}

/**
 * May this shard answer reads of `bucket`? Run as the first statement of a REPEATABLE READ transaction: the
 * snapshot then holds the state and the rows together, and a frozen or owned bucket is complete here (rows
 * are only cleaned up once a bucket is `moved`). Optimistic (no lock): also the pre-check before a claim.
 */
export async function checkReadFence(on: Runner, shard: number, bucket: number): Promise<void> {
  const f = await fenceRow(on, bucket, '');
  if (f.state === 'incoming' || f.state === 'moved') throw new BucketFenced(bucket, shard, f.state, f.mapVersion);
}

/** Optimistic write check outside a transaction (before claiming a key): the locking check in the write decides. */
export async function precheckWriteFence(on: Runner, shard: number, bucket: number): Promise<void> {
  const f = await fenceRow(on, bucket, '');
  if (f.state !== 'owned') throw new BucketFenced(bucket, shard, f.state, f.mapVersion);
}

/** Record an order written to a bucket that is being copied away (same transaction as the order). */
export async function logChange(em: Runner, c: { bucket: number; orderId: string; createdAt: Date; userId: string; key: string }): Promise<void> {
  await em.query('INSERT INTO bucket_changes (bucket, order_id, created_at, user_id, idem_key) VALUES (?, ?, ?, ?, ?)', [c.bucket, c.orderId, c.createdAt, c.userId, c.key]);
}

/** The fence states of every bucket with a row on this shard (GET /admin/shards). */
export async function fenceStates(on: Runner): Promise<Record<FenceState, number>> {
  const out: Record<FenceState, number> = { owned: 0, incoming: 0, frozen: 0, moved: 0 };
  for (const r of await on.query('SELECT state, COUNT(*) AS n FROM bucket_fence GROUP BY state')) out[r.state as FenceState] = Number(r.n);
  return out;
}
