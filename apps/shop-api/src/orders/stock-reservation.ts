/**
 * StockReservation: stock lives on the catalog primary, orders on the shards, so an order spans two
 * databases with no distributed transaction. The order is: reserve on the catalog first with a
 * conditional UPDATE (never below zero, never oversold: the row lock serialises concurrent buyers), then
 * write the order on the shard; if that write fails, release (compensate) the reservation. The window
 * left open is a crash between the two steps (stock reserved, no order): closing it needs a reservation
 * log swept by a job (an outbox); see docs/q1a. Every order pays one round of the single catalog
 * primary, which is what limits how far adding shards scales writes (measured in orders-write).
 */
import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { DbNodes } from '#libs/db';

export interface StockLine {
  productId: string;
  quantity: number;
}

const affected = (res: any) => Number(res?.affectedRows ?? res?.[1] ?? 0);

/** Per product, read inside the reserving transaction: the unit price to snapshot, and the row's new version. */
export interface Reserved {
  prices: Map<string, number>;
  versions: Map<string, number>;
}

@Injectable()
export class StockReservation {
  constructor(private readonly db: DbNodes) {}

  /** Reserves every line or none; returns each product's unit price and new version, read after the reservation. */
  async reserve(lines: StockLine[]): Promise<Reserved> {
    // A fixed lock order (by product id) so two multi-line orders cannot deadlock each other.
    const sorted = [...lines].sort((a, b) => (BigInt(a.productId) < BigInt(b.productId) ? -1 : 1));
    return this.db.primary.ds.transaction(async (em) => {
      for (const l of sorted) {
        const res = await em.query('UPDATE products SET stock = stock - ?, version = version + 1 WHERE id = ? AND stock >= ?', [l.quantity, l.productId, l.quantity]);
        if (affected(res) === 0) {
          const exists = await em.query('SELECT stock FROM products WHERE id = ?', [l.productId]);
          if (!exists.length) throw ApiError.unprocessable(`product ${l.productId} does not exist`, [{ field: 'items', problems: [`unknown product ${l.productId}`] }]);
          throw new ApiError(409, 'insufficient_stock', `not enough stock for product ${l.productId}`, { productId: l.productId, available: Number(exists[0].stock), requested: l.quantity });
        }
      }
      // Read after the UPDATEs: this transaction's snapshot starts here, so the prices are current.
      const rows = await em.query(`SELECT id, price_cents, version FROM products WHERE id IN (${sorted.map(() => '?').join(', ')})`, sorted.map((l) => l.productId));
      return {
        prices: new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.price_cents)])),
        versions: new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.version)])),
      };
    });
  }

  /** Gives reserved stock back (the compensation when the order write fails); returns the rows' new versions. */
  async release(lines: StockLine[]): Promise<Map<string, number>> {
    const sorted = [...lines].sort((a, b) => (BigInt(a.productId) < BigInt(b.productId) ? -1 : 1));
    return this.db.primary.ds.transaction(async (em) => {
      for (const l of sorted) await em.query('UPDATE products SET stock = stock + ?, version = version + 1 WHERE id = ?', [l.quantity, l.productId]);
      const rows = await em.query(`SELECT id, version FROM products WHERE id IN (${sorted.map(() => '?').join(', ')})`, sorted.map((l) => l.productId));
      return new Map<string, number>(rows.map((r: any) => [String(r.id), Number(r.version)]));
    });
  }
}
