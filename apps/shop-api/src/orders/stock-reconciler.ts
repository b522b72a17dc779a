/**
 * StockReconciler: settles stock reservations by asking the order's shard, never by guessing.
 *
 * `settle` is the one decision, used by the order path's compensation and by the background sweep:
 * on the shard that owns the order id, lock the idempotency key row (the order write updates that row
 * first, in the transaction that inserts the order, so the lock waits out a write in flight), then look
 * for the order row. It exists → the reservation is committed. It does not, and the key still names this
 * attempt with a live lease → still in flight, leave it (the sweep only). Otherwise → delete the attempt's
 * pending key in that same transaction (a fence: the attempt can never complete its key, so never write its
 * order) and release the stock. A shard that cannot be asked throws: the reservation stays as it is, for
 * a later round. Releases are idempotent (StockReservation), so compensation and sweep may race.
 *
 * The sweep runs in every API instance every ORDER_RECONCILE_INTERVAL_S under a named lock on the catalog
 * primary (one instance works per round), over reservations older than the lease; `reconcileOnce` is the
 * same work on demand (tests, tools).
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, BackgroundLoop, Metrics, Settings, type Logger } from '#libs/core';
import type { DataSource } from 'typeorm';
import { BucketFenced, DbNodes, decodeOrderId, OrderShardRouter, type SqlDialect } from '#libs/db';
import { IdempotencyStore } from './idempotency-store.js';
import { OrdersRepository } from './orders.repository.js';
import { StockReservation, type StaleReservation } from '../catalog/stock-reservation.js';

export type Settlement = 'committed' | 'released' | 'in-flight';

export interface ReconcileResult {
  /** false when another instance held the lock. */
  ran: boolean;
  committed: number;
  released: number;
  inFlight: number;
  /** Reservations whose shard could not be asked (left for a later round). */
  unreachable: number;
  purged: number;
}

const LOCK = 'mallscale_stock_reconcile';
const BATCH = 500;

@Injectable()
export class StockReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly db: DbNodes,
    private readonly shards: OrderShardRouter,
    private readonly keys: IdempotencyStore,
    private readonly orders: OrdersRepository,
    private readonly stock: StockReservation,
    private readonly config: Settings,
    private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.loop = new BackgroundLoop('stock reconcile', () => this.reconcileOnce(), log);
  }

  /**
   * Decide one reservation by the shard's answer (see the header). `respectLease`: leave an attempt whose
   * lease is live alone (the sweep); the attempt itself, compensating its own failure, passes false.
   */
  async settle(r: StaleReservation, opts: { respectLease: boolean }): Promise<Settlement> {
    const verdict = await this.decide(r, opts);
    if (verdict === 'committed') await this.stock.commit(r.reservationId);
    if (verdict === 'released') await this.stock.release(r.reservationId);
    return verdict;
  }

  /**
   * The shard's answer. The bucket's fence comes first (shared lock): a shard that gave the bucket away (or
   * is receiving it) must not say "no such order" for an order that lives on the bucket's new shard, so a
   * fenced answer re-routes with a fresh map. A frozen bucket still answers: its rows are all there.
   */
  private async decide(r: StaleReservation, opts: { respectLease: boolean }): Promise<Settlement> {
    const id = BigInt(r.reservationId);
    const createdAt = new Date(decodeOrderId(id).timestampMs);
    for (let n = 1; ; n++) {
      const { bucket, shard } = await this.shards.shardForOrder(id);
      const node = this.db.shards[shard];
      try {
        return await this.decideOn(node.ds, node.dialect, shard, bucket, r, createdAt, opts);
      } catch (e) {
        if (!(e instanceof BucketFenced) || n >= this.config.resharding.fenceRetries) throw e;
        await this.shards.refresh();
        await new Promise((res) => setTimeout(res, Math.min(5 * n, 50)));
      }
    }
  }

  private async decideOn(ds: DataSource, dialect: SqlDialect, shard: number, bucket: number, r: StaleReservation, createdAt: Date, opts: { respectLease: boolean }): Promise<Settlement> {
    // READ COMMITTED: the decision rests on the key's row lock and on locking reads of the latest committed
    // rows; gap locks on absent rows would only hold up other users' claims and orders.
    return ds.transaction('READ COMMITTED', async (em): Promise<Settlement> => {
      const fence = await em.query(`SELECT state FROM bucket_fence WHERE bucket = ? ${dialect.sharedLock}`, [bucket]);
      const state = fence[0]?.state ?? 'owned';
      if (state === 'incoming' || state === 'moved') throw new BucketFenced(bucket, shard, state, 0);
      const key = await this.keys.find(em, r.userId, r.key, { forUpdate: true });
      if (await this.orders.exists(em, r.reservationId, createdAt, r.userId)) return 'committed';
      if (key?.status === 'pending' && key.orderId === r.reservationId) {
        if (opts.respectLease && key.leaseLive) return 'in-flight';
        await this.keys.release(em, r.userId, r.key, r.reservationId);
      }
      return 'released';
    });
  }

  onApplicationBootstrap(): void {
    const every = this.config.orders.reconcileIntervalSeconds * 1000;
    // Jittered start so instances started together do not all queue on the lock at once.
    this.loop.start({ everyMs: every, firstDelayMs: Math.floor(Math.random() * every) });
  }

  /** One round: settle reservations older than `olderThanMs` (default: the lease), then purge old settled ones. */
  async reconcileOnce(opts: { olderThanMs?: number } = {}): Promise<ReconcileResult> {
    const out: ReconcileResult = { ran: false, committed: 0, released: 0, inFlight: 0, unreachable: 0, purged: 0 };
    const qr = this.db.primary.ds.createQueryRunner();
    await qr.connect();
    try {
      const [row] = await qr.query('SELECT GET_LOCK(?, 0) AS ok', [LOCK]);
      if (Number(row?.ok) !== 1) return out;
      out.ran = true;
      try {
        const seen = new Set<string>();
        for (;;) {
          const batch = (await this.stock.stale(opts.olderThanMs ?? this.config.orders.leaseMs, BATCH)).filter((r) => !seen.has(r.reservationId));
          if (!batch.length) break;
          for (const r of batch) {
            seen.add(r.reservationId);
            try {
              const v = await this.settle(r, { respectLease: true });
              if (v === 'committed') out.committed++;
              else if (v === 'released') out.released++;
              else out.inFlight++;
            } catch (e) {
              out.unreachable++;
              this.log.warn({ reservation: r.reservationId, err: (e as Error).message }, 'stock reservation not settled: its shard could not be asked');
            }
          }
        }
        out.purged = await this.stock.purgeSettled(this.config.orders.reservationRetentionHours);
      } finally {
        await qr.query('SELECT RELEASE_LOCK(?)', [LOCK]);
      }
    } finally {
      await qr.release();
    }
    const m = this.metrics.counter('orders_reservations_reconciled_total', 'stock reservations settled by the reconciler, by outcome', ['outcome']);
    if (out.committed) m.inc({ outcome: 'committed' }, out.committed);
    if (out.released) m.inc({ outcome: 'released' }, out.released);
    if (out.committed || out.released || out.unreachable) this.log.info({ ...out }, 'stock reconcile');
    return out;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }
}
