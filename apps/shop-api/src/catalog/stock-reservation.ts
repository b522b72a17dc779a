/**
 * StockReservation: the one owner of products.stock. Stock lives on the catalog primary, orders on the
 * shards, so an order spans two databases with no distributed transaction. An attempt reserves on the
 * catalog first with a conditional UPDATE (never below zero, never oversold: the row lock serialises
 * concurrent buyers) and records the reservation in stock_reservations IN THE SAME TRANSACTION, under the
 * order id it will write; then it writes the order on the shard. The log is what closes the crash window
 * between the two steps: a reservation is later either committed (its order exists) or released (it never
 * will), each exactly once, and only the release that wins the `reserved` state gives stock back, so stock
 * is never released twice (StockReconciler decides which, by asking the shard).
 * Writes go through the ReplicaRouter (the request gets the write's consistency token) and drop the product
 * from the cache with the row's new version, so a lagging replica cannot put the old stock back.
 * Every order pays one round of the single catalog primary, which is what limits how far adding shards
 * scales writes (measured in orders-write).
 */
import { Injectable, Optional } from '@nestjs/common';
import { ApiError, Metrics } from '#libs/core';
import { affectedRows, ReplicaRouter, retryOnDeadlock } from '#libs/db';
import type { EntityManager } from 'typeorm';
import { CatalogCache } from './product-cache.provider.js';

export interface StockLine {
  productId: string;
  quantity: number;
}

/** The idempotency key an attempt claimed: the fence StockReconciler locks before it decides. */
export interface ReservationOwner {
  userId: string;
  key: string;
}

/** Per product, read inside the reserving transaction: the unit price to snapshot, and the row's new version. */
export interface Reserved {
  prices: Map<string, number>;
  versions: Map<string, number>;
}

export interface StaleReservation extends ReservationOwner {
  reservationId: string;
}

const byProduct = (a: StockLine, b: StockLine) => (BigInt(a.productId) < BigInt(b.productId) ? -1 : 1);

@Injectable()
export class StockReservation {
  constructor(
    private readonly router: ReplicaRouter,
    private readonly metrics: Metrics,
    @Optional() private readonly cache?: CatalogCache,
  ) {}

  /**
   * Reserves every line or none, recorded under `reservationId` (the order id the attempt will write);
   * returns each product's unit price and new version, read after the reservation.
   */
  async reserve(reservationId: string, owner: ReservationOwner, lines: StockLine[]): Promise<Reserved> {
    // A fixed lock order (by product id) so two multi-line orders cannot deadlock each other.
    const sorted = [...lines].sort(byProduct);
    const { value } = await retryOnDeadlock(() =>
      this.router.transaction(async (em) => {
        for (const l of sorted) {
          const res = await em.query('UPDATE products SET stock = stock - ?, version = version + 1 WHERE id = ? AND stock >= ?', [l.quantity, l.productId, l.quantity]);
          if (affectedRows(res) === 0) {
            const exists = await em.query('SELECT stock FROM products WHERE id = ?', [l.productId]);
            if (!exists.length) throw ApiError.unprocessable(`product ${l.productId} does not exist`, [{ field: 'items', problems: [`unknown product ${l.productId}`] }]);
            throw new ApiError(409, 'insufficient_stock', `not enough stock for product ${l.productId}`, { productId: l.productId, available: Number(exists[0].stock), requested: l.quantity });
          }
        }
        await em.query(
          `INSERT INTO stock_reservations (reservation_id, product_id, user_id, idem_key, quantity, state) VALUES ${sorted.map(() => "(?, ?, ?, ?, ?, 'reserved')").join(', ')}`,
          sorted.flatMap((l) => [reservationId, l.productId, owner.userId, owner.key, l.quantity]),
        );
        // Read after the UPDATEs: this transaction's snapshot starts here, so the prices are current.
        const rows = await em.query(`SELECT id, price_cents, version FROM products WHERE id IN (${sorted.map(() => '?').join(', ')})`, sorted.map((l) => l.productId));
        return {
          prices: new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.price_cents)])),
          versions: new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.version)])),
        };
      }),
    );
    await this.invalidate(value.versions);
    return value;
  }

  /** The order exists: the reservation is final (idempotent; a released reservation stays released). */
  async commit(reservationId: string): Promise<void> {
    await this.router.write((em) => em.query("UPDATE stock_reservations SET state = 'committed', settled_at = NOW(3) WHERE reservation_id = ? AND state = 'reserved'", [reservationId]));
  }

  /**
   * Gives the stock of a reservation back, line by line, each only by the UPDATE that moves it out of
   * `reserved` (a second release, concurrent or later, finds nothing to give). Returns the new versions of
   * the products whose stock came back (empty when there was nothing left to release).
   */
  async release(reservationId: string): Promise<Map<string, number>> {
    const { value: versions } = await retryOnDeadlock(() =>
      this.router.transaction(async (em) => {
        const lines = (await em.query("SELECT product_id, quantity FROM stock_reservations WHERE reservation_id = ? AND state = 'reserved'", [reservationId])).map(
          (r: any): StockLine => ({ productId: String(r.product_id), quantity: Number(r.quantity) }),
        );
        const released: string[] = [];
        for (const l of lines.sort(byProduct)) {
          const won = await em.query("UPDATE stock_reservations SET state = 'released', settled_at = NOW(3) WHERE reservation_id = ? AND product_id = ? AND state = 'reserved'", [
            reservationId,
            l.productId,
          ]);
          if (affectedRows(won) !== 1) continue;
          await em.query('UPDATE products SET stock = stock + ?, version = version + 1 WHERE id = ?', [l.quantity, l.productId]);
          released.push(l.productId);
        }
        return this.versionsOf(em, released);
      }),
    );
    if (versions.size) this.metrics.counter('orders_stock_released_total', 'stock reservations released (order never written)').inc();
    await this.invalidate(versions);
    return versions;
  }

  /** Reservations still `reserved` after `olderThanMs` (by the catalog's clock): candidates to settle. */
  async stale(olderThanMs: number, limit: number): Promise<StaleReservation[]> {
    const rows = await this.router.primary.query(
      `SELECT DISTINCT reservation_id, user_id, idem_key FROM stock_reservations
        WHERE state = 'reserved' AND created_at < DATE_SUB(NOW(3), INTERVAL ? MICROSECOND) ORDER BY reservation_id LIMIT ?`,
      [olderThanMs * 1000, limit],
    );
    return rows.map((r: any) => ({ reservationId: String(r.reservation_id), userId: String(r.user_id), key: r.idem_key }));
  }

  /** Settled reservations are history: drop those older than `hours`, in batches. */
  async purgeSettled(hours: number): Promise<number> {
    let total = 0;
    for (;;) {
      const res = await this.router.primary.query(
        "DELETE FROM stock_reservations WHERE state IN ('committed', 'released') AND created_at < DATE_SUB(NOW(3), INTERVAL ? HOUR) LIMIT 5000",
        [hours],
      );
      total += affectedRows(res);
      if (affectedRows(res) < 5000) return total;
    }
  }

  private async versionsOf(em: EntityManager, ids: string[]): Promise<Map<string, number>> {
    if (!ids.length) return new Map();
    const rows = await em.query(`SELECT id, version FROM products WHERE id IN (${ids.map(() => '?').join(', ')})`, ids);
    return new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.version)]));
  }

  /**
   * Stock is part of the cached product: every stock change drops it from the product cache (L2 + every L1),
   * with the row's new version, so a reader that loaded the older row from a lagging replica cannot put it back.
   */
  private async invalidate(versions: Map<string, number>): Promise<void> {
    if (this.cache) await Promise.all([...versions].map(([id, v]) => this.cache!.invalidateProduct(id, v).catch(() => undefined)));
  }
}
