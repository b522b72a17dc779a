/**
 * OrdersRepository: the SQL of one order shard, visible. Every method takes the shard's DataSource (or a
 * transaction on it): the caller routed first (OrderShardRouter), and nothing here ever joins across
 * shards. Every order query carries created_at (derived from the id's time bits for look-ups by id), so
 * MySQL/MariaDB prune to the month partitions involved.
 */
import { Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';

type Runner = DataSource | EntityManager;

export interface OrderRow {
  id: string;
  userId: string;
  bucket: number;
  status: string;
  totalCents: number;
  itemCount: number;
  createdAt: Date;
}

export interface OrderItemRow {
  lineNo: number;
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

const ORDER_COLUMNS = 'id, user_id, bucket, status, total_cents, item_count, created_at';

function toOrder(r: any): OrderRow {
  return {
    id: String(r.id),
    userId: String(r.user_id),
    bucket: Number(r.bucket),
    status: r.status,
    totalCents: Number(r.total_cents),
    itemCount: Number(r.item_count),
    createdAt: new Date(r.created_at),
  };
}

@Injectable()
export class OrdersRepository {
  async insertOrder(on: Runner, o: OrderRow, items: OrderItemRow[]): Promise<void> {
    await on.query(`INSERT INTO orders (${ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`, [o.id, o.userId, o.bucket, o.status, o.totalCents, o.itemCount, o.createdAt]);
    // Items go to the SAME shard, in the same local transaction: the only "foreign key" partitioned
    // tables can have is this code path.
    await on.query(
      `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents, created_at) VALUES ${items.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
      items.flatMap((i) => [o.id, i.lineNo, i.productId, i.quantity, i.unitPriceCents, o.createdAt]),
    );
  }

  /** By id alone: created_at comes from the id's time bits, so this prunes to one partition. */
  async findById(on: Runner, id: string, createdAt: Date): Promise<(OrderRow & { items: OrderItemRow[] }) | null> {
    const rows = await on.query(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = ? AND created_at = ?`, [id, createdAt]);
    if (!rows.length) return null;
    const items = await on.query(
      'SELECT line_no, product_id, quantity, unit_price_cents FROM order_items WHERE order_id = ? AND created_at = ? ORDER BY line_no',
      [id, createdAt],
    );
    return {
      ...toOrder(rows[0]),
      items: items.map((i: any) => ({ lineNo: Number(i.line_no), productId: String(i.product_id), quantity: Number(i.quantity), unitPriceCents: Number(i.unit_price_cents) })),
    };
  }

  /** A user's orders in [from, to), newest first, keyset-paginated after (createdAt, id): ix_orders_user_created + pruning. */
  listForUserSql(after: boolean): string {
    return `SELECT ${ORDER_COLUMNS} FROM orders
             WHERE user_id = ? AND created_at >= ? AND created_at < ?${after ? ' AND (created_at < ? OR (created_at = ? AND id < ?))' : ''}
             ORDER BY created_at DESC, id DESC LIMIT ?`;
  }

  async listForUser(on: Runner, userId: string, from: Date, to: Date, after: { createdAt: Date; id: string } | null, limit: number): Promise<OrderRow[]> {
    const params: unknown[] = [userId, from, to];
    if (after) params.push(after.createdAt, after.createdAt, after.id);
    params.push(limit);
    return (await on.query(this.listForUserSql(!!after), params)).map(toOrder);
  }

  /**
   * Does this user's order exist? A locking read, so inside a transaction that holds the idempotency key's
   * row lock it sees a write that committed while we waited for the lock (settlement, StockReconciler).
   */
  async exists(on: Runner, id: string, createdAt: Date, userId: string): Promise<boolean> {
    const rows = await on.query('SELECT 1 AS found FROM orders WHERE id = ? AND created_at = ? AND user_id = ? FOR UPDATE', [id, createdAt, userId]);
    return rows.length > 0;
  }

  /**
   * The newest `limit` orders of one shard (ids are time-ordered, so the primary key gives the order), leaving
   * out buckets this shard does not own (being copied here, or moved away and not cleaned up yet).
   */
  async recent(on: Runner, limit: number): Promise<OrderRow[]> {
    return (
      await on.query(
        `SELECT ${ORDER_COLUMNS} FROM orders WHERE bucket NOT IN (SELECT bucket FROM bucket_fence WHERE state IN ('incoming', 'moved')) ORDER BY id DESC LIMIT ?`,
        [limit],
      )
    ).map(toOrder);
  }
}
