/**
 * OrdersService: orders sharded by user. A user's orders, items and idempotency keys live on the shard
 * that owns the user's bucket; an order id carries its bucket, so GET /orders/:id routes from the id
 * alone (its bucket through the map, so a moved bucket's old orders follow it). Cross-shard reads exist
 * only for admins (scatter-gather with the limit pushed down and a k-way merge); everything a user does
 * touches one shard and, for stock, the catalog primary.
 * Online resharding: every write and read checks its bucket's fence on the shard, inside its transaction
 * (BucketFenced: this shard no longer, or not yet, owns the bucket); the order then re-routes with a fresh
 * map and retries, SHARD_FENCE_RETRIES times, before a retryable 503.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { ApiError, Metrics, Settings, type OrderFailpoint } from '#libs/core';
import {
  BucketFenced,
  bucketOf,
  BUCKETS,
  checkReadFence,
  checkWriteFence,
  DbNodes,
  decodeOrderId,
  fenceStates,
  listArchiveTables,
  listPartitions,
  logChange,
  monthStart,
  OrderIdGenerator,
  OrderShardRouter,
  parseOrderId,
  partitionName,
  precheckWriteFence,
  ShardNotConfigured,
} from '#libs/db';
import type { AuthUser } from '../auth/auth.guard.js';
import type { CreateOrderDto } from './dto/create-order.dto.js';
import { kWayMerge } from './k-way-merge.js';
import { OrdersRepository, type OrderItemRow, type OrderRow } from './orders.repository.js';
import { IdempotencyStore } from './idempotency-store.js';
import { StockReconciler } from './stock-reconciler.js';
import { StockReservation } from '../catalog/stock-reservation.js';

export interface OrderView {
  id: string;
  userId: string;
  status: string;
  totalCents: number;
  itemCount: number;
  createdAt: string;
  /** Where the order lives: bucket (from the id), shard (from the bucket map), month partition. */
  bucket: number;
  shard: string;
  partition: string;
  items?: OrderItemRow[];
}

export interface CreateResult {
  status: number;
  body: OrderView;
  replayed: boolean;
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const ER_LOCK_DEADLOCK = 1213;

/** The key is no longer this attempt's (taken over after its lease, or fenced): its order must not be written. */
class KeyLost extends Error {}

@Injectable()
export class OrdersService {
  private readonly ids = new OrderIdGenerator();

  constructor(
    private readonly db: DbNodes,
    private readonly router: OrderShardRouter,
    private readonly repo: OrdersRepository,
    private readonly keys: IdempotencyStore,
    private readonly stock: StockReservation,
    private readonly reconciler: StockReconciler,
    private readonly config: Settings,
    private readonly metrics: Metrics,
  ) {}

  private view(o: OrderRow, shard: number, items?: OrderItemRow[]): OrderView {
    return {
      id: o.id,
      userId: o.userId,
      status: o.status,
      totalCents: o.totalCents,
      itemCount: o.itemCount,
      createdAt: o.createdAt.toISOString(),
      bucket: o.bucket,
      shard: this.db.shards[shard].name,
      partition: partitionName(monthStart(o.createdAt)),
      ...(items ? { items } : {}),
    };
  }

  // ------------------------------------------------------------------ POST /orders

  /**
   * Orchestration only: claim the key (IdempotencyStore), reserve the stock under the order id the claim
   * carries (StockReservation), write the order and complete the key in one shard transaction, and on a
   * failure ask the shard before giving anything back (StockReconciler.settle).
   */
  async create(user: AuthUser, idempotencyKey: unknown, dto: CreateOrderDto): Promise<CreateResult> {
    if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw ApiError.badRequest('the Idempotency-Key header is required: 1-64 characters of letters, digits and _ . : -');
    }
    const key = idempotencyKey;
    const seen = new Set<string>();
    for (const l of dto.items) {
      if (seen.has(l.productId)) throw ApiError.badRequest(`product ${l.productId} appears twice: send one line per product`);
      seen.add(l.productId);
    }
    const requestHash = createHash('sha256').update(JSON.stringify(dto.items.map((l) => [l.productId, l.quantity]))).digest('hex');
    return this.fenced(async () => {
      const { bucket, shard } = await this.router.shardFor(user.id);
      return this.createOn(user, key, dto, requestHash, bucket, shard);
    });
  }

  /**
   * Runs `attempt` again with a fresh bucket map while a shard's fence refuses it (a stale map, or the
   * bucket's cut-over in progress: frozen for a few statements). A write refused by a fence wrote nothing,
   * so the retry is a new attempt on the bucket's current shard: at once when the fresh map names another
   * shard, else (frozen) as soon as the map's version moves.
   */
  private async fenced<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (e instanceof ShardNotConfigured) {
          // A bucket moved to a shard added after this instance started: restart it with every DB_SHARD_URLS.
          throw new ApiError(503, 'shard_not_configured', 'the order shard of this user is not configured on this server; retry later', undefined, { cause: e });
        }
        if (!(e instanceof BucketFenced)) throw e;
        this.metrics.counter('orders_fenced_total', 'order reads and writes refused by a bucket fence and re-routed, by fence state', ['state']).inc({ state: e.state });
        if (n >= this.config.resharding.fenceRetries) {
          throw new ApiError(503, 'bucket_moving', 'this order bucket is being moved between shards; retry (with the same Idempotency-Key)', undefined, { cause: e });
        }
        await this.router.refresh();
        // The map already names another shard (the flip happened, or this instance's map was old): re-route now.
        if (this.router.shardForBucketSync(e.bucket) !== e.shard) continue;
        const r = this.config.resharding;
        if (e.state === 'frozen') {
          // Mid cut-over: the write can go on when the map flips. Watch the map's version, not the frozen shard.
          await this.router.waitForNewMap(this.router.version, r.fenceWaitMs, r.fencePollMs);
        } else if (e.state === 'incoming') {
          // The map names a shard whose fence trails the flip by one statement: a moment, then again.
          await new Promise((res) => setTimeout(res, Math.min(5 * n, 50)));
        }
      }
    }
  }

  private async createOn(user: AuthUser, key: string, dto: CreateOrderDto, requestHash: string, bucket: number, shard: number): Promise<CreateResult> {
    const ds = this.db.shards[shard].ds;
    // Optimistic: a stale map learns here, before it claims a key on a shard that gave the bucket away.
    if (this.config.resharding.fenceCheck) await precheckWriteFence(ds, shard, bucket);
    const claim = await this.keys.claim(ds, user.id, key, requestHash, () => this.ids.next(bucket).toString());
    if (claim.kind === 'replay') return { status: claim.status, body: claim.body as OrderView, replayed: true };
    const { orderId } = claim;
    const owner = { userId: user.id, key };
    this.crashAt('after-claim');
    // Taken over from a claimer that died: its attempt can no longer write an order, so any stock it
    // reserved goes back now (the reconciler would find it too, later).
    if (claim.tookOverFrom) await this.reconciler.settle({ reservationId: claim.tookOverFrom, ...owner }, { respectLease: false }).catch(() => undefined);

    const lines = dto.items.map((l) => ({ productId: l.productId, quantity: l.quantity }));
    let prices: Map<string, number>;
    try {
      ({ prices } = await this.stock.reserve(orderId, owner, lines));
    } catch (e) {
      // Nothing to compensate that the log will not find: free the key so a retry runs again.
      await this.keys.release(ds, user.id, key, orderId).catch(() => undefined);
      throw e;
    }
    this.crashAt('after-reserve');

    const { order, items } = this.newOrder(orderId, user.id, bucket, lines, prices);
    const body = this.view(order, shard, items);
    try {
      await this.writeOrder(shard, owner, order, items, body);
    } catch (e) {
      if (e instanceof BucketFenced) {
        // The fence is the transaction's first statement: nothing of this attempt committed. Give the key
        // and the stock back here, then the caller re-routes.
        await this.keys.release(ds, user.id, key, orderId).catch(() => undefined);
        await this.stock.release(orderId).catch(() => undefined); // else the reconciler releases it
        throw e;
      }
      return this.compensate(orderId, owner, body, e);
    }
    this.crashAt('after-shard-commit');
    this.metrics.counter('orders_created_total', 'orders written, by shard', ['shard']).inc({ shard: this.db.shards[shard].name });
    await this.stock.commit(orderId).catch(() => undefined); // else the reconciler commits it
    return { status: 201, body, replayed: false };
  }

  /**
   * The shard write failed, or its answer was lost. Ask the shard before touching the stock: the order
   * exists (a lost commit acknowledgement) → it stands, answer it; it does not → fence the key, release the
   * stock, 503; the shard cannot be asked → leave the reservation to the reconciler rather than guess.
   */
  private async compensate(orderId: string, owner: { userId: string; key: string }, body: OrderView, cause: unknown): Promise<CreateResult> {
    if (cause instanceof KeyLost) {
      await this.reconciler.settle({ reservationId: orderId, ...owner }, { respectLease: false }).catch(() => undefined);
      throw ApiError.conflict('a request with this Idempotency-Key is still in progress; retry later');
    }
    let verdict;
    try {
      verdict = await this.reconciler.settle({ reservationId: orderId, ...owner }, { respectLease: false });
    } catch {
      // The driver's message goes to the log (with the request id), never to the client.
      throw new ApiError(503, 'order_write_unconfirmed', 'the order could not be confirmed; retry with the same Idempotency-Key', undefined, { cause });
    }
    if (verdict === 'committed') {
      this.metrics.counter('orders_lost_acks_total', 'order writes whose commit was not acknowledged but had committed').inc();
      return { status: 201, body, replayed: false };
    }
    throw new ApiError(503, 'order_write_failed', 'the order could not be written (its stock was released); retry with the same Idempotency-Key', undefined, { cause });
  }

  private newOrder(orderId: string, userId: string, bucket: number, lines: { productId: string; quantity: number }[], prices: Map<string, number>) {
    // created_at IS the id's timestamp: a look-up by id alone knows its partition.
    const createdAt = new Date(decodeOrderId(BigInt(orderId)).timestampMs);
    const items: OrderItemRow[] = lines.map((l, i) => ({ lineNo: i + 1, productId: l.productId, quantity: l.quantity, unitPriceCents: prices.get(l.productId)! }));
    const order: OrderRow = {
      id: orderId,
      userId,
      bucket,
      status: 'placed',
      totalCents: items.reduce((s, i) => s + i.unitPriceCents * i.quantity, 0),
      itemCount: items.length,
      createdAt,
    };
    return { order, items };
  }

  /**
   * The bucket's fence first (a shared lock: a cut-over's freeze waits for this transaction, and refuses
   * every later one), the key (its row lock is what settlement waits on), then the order rows, and the
   * change row while the bucket is being copied away: one local transaction.
   */
  private async writeOrder(shard: number, owner: { userId: string; key: string }, order: OrderRow, items: OrderItemRow[], body: OrderView): Promise<void> {
    const node = this.db.shards[shard];
    for (let attempt = 1; ; attempt++) {
      try {
        await node.ds.transaction(async (em) => {
          // SHARD_FENCE_CHECK=off (benchmarks only, refused in production) measures what these two reads cost.
          const { logging } = this.config.resharding.fenceCheck ? await checkWriteFence(em, node.dialect, shard, order.bucket) : { logging: false };
          if (!(await this.keys.complete(em, owner.userId, owner.key, order.id, 201, body))) throw new KeyLost();
          await this.repo.insertOrder(em, order, items);
          if (logging) await logChange(em, { bucket: order.bucket, orderId: order.id, createdAt: order.createdAt, ...owner });
        });
        return;
      } catch (e) {
        // InnoDB chose this transaction as a deadlock victim (e.g. next to the mover's clean-up of another
        // bucket): it was rolled back whole, the key is still this attempt's, so the same write runs again.
        if ((e as { errno?: number }).errno !== ER_LOCK_DEADLOCK || attempt >= 3) throw e;
        this.metrics.counter('orders_write_deadlock_retries_total', 'order shard transactions rolled back by a deadlock and run again').inc();
      }
    }
  }

  /** A read of one bucket, on its shard, in a snapshot that starts with the bucket's fence: never half a moved bucket. */
  private readBucket<T>(bucket: number, read: (em: EntityManager, shard: number) => Promise<T>): Promise<T> {
    return this.fenced(async () => {
      const shard = await this.router.shardForBucket(bucket);
      return this.db.shards[shard].ds.transaction('REPEATABLE READ', async (em) => {
        await checkReadFence(em, shard, bucket);
        return read(em, shard);
      });
    });
  }

  /**
   * Test-only crash switch: with NODE_ENV=test and ORDER_FAILPOINT=<point>, the process SIGKILLs itself here
   * (the crash tests run shop-api as a child process). Config leaves it '' in any other environment.
   */
  private crashAt(point: OrderFailpoint): void {
    if (this.config.orders.failpoint === point) process.kill(process.pid, 'SIGKILL');
  }

  // ------------------------------------------------------------------ GET /orders/:id

  async get(user: AuthUser, rawId: string): Promise<OrderView> {
    const id = parseOrderId(rawId);
    if (id === null) throw ApiError.badRequest('order id must be a positive 64-bit integer');
    const decoded = decodeOrderId(id);
    const { order, shard } = await this.readBucket(decoded.bucket, async (em, shard) => ({ shard, order: await this.repo.findById(em, id.toString(), new Date(decoded.timestampMs)) }));
    // Another user's order answers 404, exactly like a missing one: no hint that it exists.
    if (!order || (user.role !== 'admin' && order.userId !== user.id)) throw ApiError.notFound('order');
    return this.view(order, shard, order.items);
  }

  // ------------------------------------------------------------------ GET /me/orders

  async listMine(user: AuthUser, q: { from?: string; to?: string; cursor?: string; limit?: number }) {
    const to = q.to ? parseDate(q.to, 'to') : new Date();
    const from = q.from ? parseDate(q.from, 'from') : new Date(to.getTime() - 90 * 86400_000);
    if (from >= to) throw ApiError.badRequest('from must be before to');
    const limit = q.limit ?? 20;
    // The cursor is bound to its user (HMAC), not to the range: `to` defaults to now and moves between pages.
    const scope = `orders-cursor|${user.id}`;
    const after = q.cursor ? this.openCursor(q.cursor, scope) : null;
    const { rows, shard } = await this.readBucket(bucketOf(user.id), async (em, shard) => ({ shard, rows: await this.repo.listForUser(em, user.id, from, to, after, limit + 1) }));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      orders: page.map((o) => this.view(o, shard)),
      nextCursor: rows.length > limit && last ? this.sealCursor(last.id, scope) : null,
    };
  }

  /** Cursor = last id + HMAC over (user, id): opaque, bound to its user, tamper-evident. */
  private sealCursor(id: string, scope: string): string {
    const sig = createHmac('sha256', this.config.auth.orderCursorSecret).update(`${scope}|${id}`).digest('base64url').slice(0, 22);
    return `${Buffer.from(id).toString('base64url')}.${sig}`;
  }

  private openCursor(cursor: string, scope: string): { createdAt: Date; id: string } {
    const bad = () => ApiError.badRequest('cursor is invalid or belongs to another user');
    const m = /^([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{22})$/.exec(cursor);
    if (!m) throw bad();
    const id = Buffer.from(m[1], 'base64url').toString();
    const parsed = parseOrderId(id);
    if (parsed === null) throw bad();
    const expected = Buffer.from(this.sealCursor(id, scope).split('.')[1]);
    if (!timingSafeEqual(expected, Buffer.from(m[2]))) throw bad();
    return { id, createdAt: new Date(decodeOrderId(parsed).timestampMs) };
  }

  // ------------------------------------------------------------------ admin: scatter-gather

  async recent(limit: number) {
    const t0 = process.hrtime.bigint();
    // Scatter: every shard in parallel, each asked for `limit` rows (the limit pushed down).
    const perShard = await Promise.all(this.db.shards.map((s, i) => this.repo.recent(s.ds, limit).then((rows) => rows.map((o) => this.view(o, i)))));
    // Gather: k sorted lists -> the global newest `limit` (ids are time-ordered). Each shard leaves out the
    // buckets it does not own; for the instant of a cut-over both may answer one order: kept once.
    const seenIds = new Set<string>();
    const unique = perShard.map((rows) => rows.filter((o) => !seenIds.has(o.id) && !!seenIds.add(o.id)));
    const merged = kWayMerge(unique, (a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0), limit);
    return {
      orders: merged,
      scatter: { shards: this.db.shards.length, rowsFetched: perShard.reduce((s, l) => s + l.length, 0), ms: Number(process.hrtime.bigint() - t0) / 1e6 },
    };
  }

  async shards() {
    const buckets = await this.router.bucketCounts();
    const out = [];
    for (const [i, s] of this.db.shards.entries()) {
      const partitions = await listPartitions(s.ds, 'orders');
      out.push({
        name: s.name,
        host: `${s.url.host}:${s.url.port}`,
        dialect: s.dialect.name,
        buckets: buckets[i],
        bucketShare: Math.round((buckets[i] / BUCKETS) * 1000) / 10,
        // information_schema estimates (exact counts would scan 10M rows per request).
        estimatedOrders: partitions.reduce((n, p) => n + p.rows, 0),
        partitions,
        archiveTables: await listArchiveTables(s.ds),
        // Buckets with a fence row here (the others are owned by default): moves in flight and done.
        fences: await fenceStates(s.ds),
      });
    }
    return { buckets: BUCKETS, mapVersion: this.router.version, shards: out };
  }
}

function parseDate(raw: string, name: string): Date {
  // YYYY-MM-DD or a full ISO-8601 timestamp with a zone; anything else is a 400, never a guess.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(raw)) {
    throw ApiError.badRequest(`${name} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp with a zone`);
  }
  const d = new Date(raw.length === 10 ? `${raw}T00:00:00Z` : raw);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== raw.slice(0, 10) && raw.length === 10) throw ApiError.badRequest(`${name} is not a real date`);
  if (d.getUTCFullYear() < 2000 || d.getUTCFullYear() > 2100) throw ApiError.badRequest(`${name} must be between 2000 and 2100`);
  return d;
}
