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

export interface IdempotencyRow {
  requestHash: string;
  status: 'pending' | 'done';
  responseStatus: number | null;
  responseBody: string | null;
  createdAt: Date;
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

const affected = (res: any) => Number(res?.affectedRows ?? res?.[1] ?? 0);

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

  /** The newest `limit` orders of one shard (ids are time-ordered, so the primary key gives the order). */
  async recent(on: Runner, limit: number): Promise<OrderRow[]> {
    return (await on.query(`SELECT ${ORDER_COLUMNS} FROM orders ORDER BY id DESC LIMIT ?`, [limit])).map(toOrder);
  }

  // ---- idempotency keys (same shard as the user's orders)

  /** true when this call claimed the key; false when a row already exists. */
  async claimKey(on: Runner, userId: string, key: string, requestHash: string, now: Date): Promise<boolean> {
    const res = await on.query(
      "INSERT IGNORE INTO idempotency_keys (user_id, idem_key, request_hash, status, created_at) VALUES (?, ?, ?, 'pending', ?)",
      [userId, key, requestHash, now],
    );
    return affected(res) === 1;
  }

  async findKey(on: Runner, userId: string, key: string): Promise<IdempotencyRow | null> {
    const rows = await on.query('SELECT request_hash, status, response_status, response_body, created_at FROM idempotency_keys WHERE user_id = ? AND idem_key = ?', [userId, key]);
    if (!rows.length) return null;
    const r = rows[0];
    return { requestHash: r.request_hash, status: r.status, responseStatus: r.response_status == null ? null : Number(r.response_status), responseBody: r.response_body, createdAt: new Date(r.created_at) };
  }

  async completeKey(on: Runner, userId: string, key: string, status: number, body: unknown, orderId: string): Promise<void> {
    await on.query("UPDATE idempotency_keys SET status = 'done', response_status = ?, response_body = ?, order_id = ? WHERE user_id = ? AND idem_key = ?", [
      status,
      JSON.stringify(body),
      orderId,
      userId,
      key,
    ]);
  }

  /** Forget a pending key after a failure, so the client's retry with the same key runs again. */
  async releaseKey(on: Runner, userId: string, key: string): Promise<void> {
    await on.query("DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? AND status = 'pending'", [userId, key]);
  }
}
