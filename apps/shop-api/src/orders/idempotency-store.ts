/**
 * IdempotencyStore: the Idempotency-Key of POST /orders as a lease on the user's shard.
 *
 * A key row is claimed `pending` with the order id its attempt will write (a fresh id per claim: the owner
 * token) and a lease (lease_until, the shard's clock). Whoever holds the row's order id may finish: the
 * order write completes the key (`done`, with the response to replay) in the SAME local transaction as the
 * order rows, and only while the key still carries its order id. A claimer that died leaves a pending key
 * whose lease runs out; a retry then takes it over with a conditional UPDATE on the old order id, so of two
 * retriers exactly one wins, and the dead claimer (should it wake up) can no longer complete the key or
 * write its order. Trade-off: a claimer slower than its lease loses the key and answers 409, which is why
 * the lease (ORDER_LEASE_MS) is long compared with one order (tens of milliseconds).
 * Rows older than 24 h are purged by the PartitionMaintainer.
 */
import { affectedRows } from '#libs/db';
import { Injectable } from '@nestjs/common';
import { ApiError, Metrics, Settings } from '#libs/core';
import type { DataSource, EntityManager } from 'typeorm';

type Runner = DataSource | EntityManager;

export interface KeyRow {
  requestHash: string;
  status: 'pending' | 'done';
  /** pending: the order id the claiming attempt will write (its owner token); done: the order it wrote. */
  orderId: string | null;
  responseStatus: number | null;
  responseBody: string | null;
  /** pending and still inside its lease (false for rows claimed before leases existed: never taken over). */
  leaseLive: boolean;
}

export type Claim =
  | { kind: 'owned'; orderId: string; /** the order id of the attempt whose expired lease this claim took over */ tookOverFrom: string | null }
  | { kind: 'replay'; status: number; body: unknown };

const WAIT_FOR_OTHER_REQUEST_MS = 15_000;

@Injectable()
export class IdempotencyStore {
  constructor(
    private readonly config: Settings,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Claim the key for a new attempt (order id from `nextOrderId`), replay the stored response, take over an
   * expired lease, or wait for the live claimer (then 409 after 15 s). 422 when the key was used with
   * another body.
   */
  async claim(ds: DataSource, userId: string, key: string, requestHash: string, nextOrderId: () => string): Promise<Claim> {
    for (const until = Date.now() + WAIT_FOR_OTHER_REQUEST_MS; ; ) {
      const orderId = nextOrderId();
      if (await this.insert(ds, userId, key, requestHash, orderId)) return { kind: 'owned', orderId, tookOverFrom: null };
      const row = await this.find(ds, userId, key);
      if (row && row.requestHash !== requestHash) {
        throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request body');
      }
      if (row?.status === 'done') {
        this.metrics.counter('orders_idempotent_replays_total', 'POST /orders answered from a stored response').inc();
        return { kind: 'replay', status: row.responseStatus ?? 201, body: JSON.parse(row.responseBody ?? '{}') };
      }
      if (row && row.orderId && !row.leaseLive && (await this.takeOver(ds, userId, key, row.orderId, orderId))) {
        this.metrics.counter('orders_idempotency_takeovers_total', 'pending Idempotency-Keys taken over after their lease expired').inc();
        return { kind: 'owned', orderId, tookOverFrom: row.orderId };
      }
      if (Date.now() > until) throw ApiError.conflict('a request with this Idempotency-Key is still in progress; retry later');
      await new Promise((r) => setTimeout(r, row ? 25 : 0)); // pending: wait; vanished (it failed): claim again
    }
  }

  private async insert(on: Runner, userId: string, key: string, requestHash: string, orderId: string): Promise<boolean> {
    const res = await on.query(
      `INSERT IGNORE INTO idempotency_keys (user_id, idem_key, request_hash, status, order_id, claimed_at, lease_until, created_at)
       VALUES (?, ?, ?, 'pending', ?, NOW(3), DATE_ADD(NOW(3), INTERVAL ? MICROSECOND), ?)`,
      // The lease is on the shard's clock (compared there); created_at stays the app's, as the purge's cut-off is.
      [userId, key, requestHash, orderId, this.config.orders.leaseMs * 1000, new Date()],
    );
    return affectedRows(res) === 1;
  }

  /** The conditional UPDATE of a take-over: only from the order id we saw, only after its lease. */
  private async takeOver(on: Runner, userId: string, key: string, fromOrderId: string, toOrderId: string): Promise<boolean> {
    const res = await on.query(
      `UPDATE idempotency_keys SET order_id = ?, claimed_at = NOW(3), lease_until = DATE_ADD(NOW(3), INTERVAL ? MICROSECOND)
        WHERE user_id = ? AND idem_key = ? AND status = 'pending' AND order_id = ? AND lease_until <= NOW(3)`,
      [toOrderId, this.config.orders.leaseMs * 1000, userId, key, fromOrderId],
    );
    return affectedRows(res) === 1;
  }

  async find(on: Runner, userId: string, key: string, opts: { forUpdate?: boolean } = {}): Promise<KeyRow | null> {
    const rows = await on.query(
      `SELECT request_hash, status, order_id, response_status, response_body, (lease_until IS NULL OR lease_until > NOW(3)) AS live
         FROM idempotency_keys WHERE user_id = ? AND idem_key = ?${opts.forUpdate ? ' FOR UPDATE' : ''}`,
      [userId, key],
    );
    if (!rows.length) return null;
    const r = rows[0];
    return {
      requestHash: r.request_hash,
      status: r.status,
      orderId: r.order_id == null ? null : String(r.order_id),
      responseStatus: r.response_status == null ? null : Number(r.response_status),
      responseBody: r.response_body,
      leaseLive: r.status === 'pending' && Number(r.live) === 1,
    };
  }

  /**
   * Marks the key done with the response to replay; run in the transaction that writes the order, BEFORE
   * the order rows (the key row lock is what settlement waits on). false: the key is no longer this
   * attempt's (taken over or fenced), and the caller must roll back.
   */
  async complete(em: EntityManager, userId: string, key: string, orderId: string, status: number, body: unknown): Promise<boolean> {
    const res = await em.query(
      "UPDATE idempotency_keys SET status = 'done', response_status = ?, response_body = ? WHERE user_id = ? AND idem_key = ? AND status = 'pending' AND order_id = ?",
      [status, JSON.stringify(body), userId, key, orderId],
    );
    return affectedRows(res) === 1;
  }

  /** Forget this attempt's pending key (after a failure, or to fence it), so the client's retry runs again. */
  async release(on: Runner, userId: string, key: string, orderId: string): Promise<void> {
    await on.query("DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? AND status = 'pending' AND order_id = ?", [userId, key, orderId]);
  }
}
