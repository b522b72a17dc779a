/**
 * BucketMover: moves order buckets from shard to shard while orders keep being written (ADR 0005).
 *
 * Per bucket, every step persisted in the catalog's shard_moves row, so a rerun resumes where a crash left:
 *   copying  the target's fence says `incoming`, the source's says `owned` + logging (each write to the bucket
 *            also records its order in bucket_changes, same transaction); a keyset copy of orders + items in
 *            chunks of `chunkRows` (INSERT IGNORE: a chunk copied twice is the same chunk), paced by the duty
 *            cycle (below), then the bucket's finished idempotency keys (through the orders they name).
 *   copied   catch-up: the orders in bucket_changes the target lacks; then verify, VDiff style: per chunk
 *            of ids, count + checksum on both sides (a chunk that differs is caught up and compared again).
 *   verified cut-over: catch up until a pass finds nothing new (writes still run), then the pause: freeze the
 *            source fence (an UPDATE: it waits for the writes in flight, at most `freezeWaitMs`, else it is
 *            withdrawn and tried again), compare counts and the checksum of the rows after the verified
 *            high-water mark (one statement per side, in parallel), copy a last delta only if they differ,
 *            flip the bucket in the map and bump the map version (one catalog transaction), target fence
 *            `owned` (the pause ends: re-routed writes land there), then source fence `moved`.
 *   moved    after `cleanupGraceSeconds`: delete the source's rows (chunks), keys and change rows → cleaned.
 * Duty cycle: after every step that works a shard (a bucket's start, a copy chunk, the keys, a catch-up, a
 * verify chunk, a cut-over, a clean-up chunk) the worker rests in proportion to the time the step took, so the
 * mover's statements keep the shards busy at most `sharePct` % of the time, all workers together (DutyCycle).
 * `abort` rolls a move back at any step before the flip (source fence owned again, the target's copy
 * deleted, the move `aborted`); after the flip the way back is a move in the other direction.
 * Orders are insert-only today (no UPDATE path): a change row names an order, and "present on the target"
 * means "copied". An order update path would have to log too, and the catch-up compare checksums.
 */
import type { DataSource } from 'typeorm';
import type { DbNode } from './db-nodes.js';
import { BUCKETS } from './order-id.js';

export type MoveState = 'copying' | 'copied' | 'verified' | 'cutover' | 'moved' | 'cleaned' | 'aborted';
export type MoverFailpoint = '' | 'mid-copy' | 'mid-cutover';

export interface MoverOptions {
  chunkRows: number;
  /** Buckets moved at the same time (each bucket's steps stay in order); default 1. */
  concurrency?: number;
  /** The least rest between two steps (ms). */
  throttleMs: number;
  /** The share of wall-clock time (%) the mover's statements may take, summed over its workers; default 100 (no rest beyond throttleMs). */
  sharePct?: number;
  cleanupGraceSeconds: number;
  /** How long the freeze may wait for the bucket's writes in flight before it is withdrawn (and tried again); default 300. */
  freezeWaitMs?: number;
  /** Freeze attempts per cut-over before the bucket is left `verified` (a rerun resumes it); default 5. */
  freezeAttempts?: number;
  /** Test-only: SIGKILL this process at that point, once (tools/shards.ts reads it under NODE_ENV=test). */
  failpoint?: MoverFailpoint;
  log?: (line: string) => void;
  /** Called as rows are copied: for the progress line. */
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  bucket: number;
  bucketIndex: number;
  buckets: number;
  rowsCopied: number;
  rowsTotal: number;
  rowsPerSecond: number;
  etaSeconds: number | null;
  phase: MoveState;
}

export interface PlannedMove {
  bucket: number;
  from: number;
  to: number;
  /** The bucket's state in shard_moves ('new' when no move is recorded, or the last one is cleaned). */
  state: MoveState | 'new' | 'in place';
  orders: number;
}

/** Where a cut-over's time went, in ms (the pause is freeze + check + delta + flip + own). */
export interface CutoverPhases {
  /** Catch-up passes right before the freeze, while writes still run (not part of the pause). */
  catchUpMs: number;
  /** The freeze's UPDATE: it waits for the bucket's writes in flight (the last attempt; earlier ones were withdrawn). */
  freezeMs: number;
  freezeAttempts: number;
  /** Counts and tail checksums, source and target in parallel. */
  checkMs: number;
  /** The last delta and its second check (0 when the first check matched). */
  deltaMs: number;
  /** Map flip + version bump: one catalog transaction. */
  flipMs: number;
  /** The target's fence `owned`: from here the re-routed writes land. */
  ownMs: number;
}

export interface BucketResult {
  bucket: number;
  from: number;
  to: number;
  rowsCopied: number;
  deltaRows: number;
  chunksVerified: number;
  /** From the freeze to the target taking writes: the longest a write to this bucket waited. */
  pauseMs: number | null;
  /** The cut-over's phases (null when not cut over in this run). */
  phases: CutoverPhases | null;
  /** Wall clock (ms since epoch) of this run's freeze and of the target taking writes (null when not cut over in this run). */
  cutoverFrom: number | null;
  cutoverTo: number | null;
  mapVersion: number | null;
  cleaned: boolean;
}

export interface MoveResult {
  buckets: BucketResult[];
  rowsCopied: number;
  copySeconds: number;
  rowsPerSecond: number;
  /** Time the workers spent resting (duty cycle and throttle), summed over them. */
  restedSeconds: number;
}

export class VerifyFailed extends Error {}

/** The freeze could not get the bucket's fence row within freezeWaitMs, `freezeAttempts` times: rerun later. */
export class FreezeTimedOut extends Error {}

/** `abort` refused: a bucket is past its map flip (the way back is a move in the other direction). */
export class AbortRefused extends Error {}

export interface AbortResult {
  bucket: number;
  from: number;
  to: number;
  /** The state the move was in when aborted. */
  was: MoveState;
  /** The target's copy of the bucket, deleted. */
  targetRowsDeleted: number;
}

const ORDER_COLS = ['id', 'user_id', 'bucket', 'status', 'total_cents', 'item_count', 'created_at'];
const ITEM_COLS = ['order_id', 'line_no', 'product_id', 'quantity', 'unit_price_cents', 'created_at'];
const KEY_COLS = ['user_id', 'idem_key', 'request_hash', 'status', 'response_status', 'response_body', 'order_id', 'claimed_at', 'lease_until', 'created_at'];
const ORDER_SUM = `COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', o.id, o.user_id, o.bucket, o.status, o.total_cents, o.item_count, o.created_at))), 0) AS c`;
const ITEM_SUM = `COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', i.order_id, i.line_no, i.product_id, i.quantity, i.unit_price_cents, i.created_at))), 0) AS c`;
const MOVE_LOCK = 'mallscale_reshard';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "1,2,5-9" -> [1,2,5,6,7,8,9]; throws on anything else. */
export function parseBucketList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part);
    if (!m) throw new Error(`bad bucket list '${text}': use numbers and ranges like 1,2,10-19`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > hi || hi >= BUCKETS) throw new Error(`bad bucket range '${part}': buckets are 0-${BUCKETS - 1}`);
    for (let b = lo; b <= hi; b++) out.add(b);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * The moves that leave every one of `shardCount` shards with its share of the buckets (1024 / N, the first
 * 1024 % N shards one more), taking the highest-numbered buckets from the shards that own too many.
 */
export function rebalancePlan(map: number[], shardCount: number): { bucket: number; to: number }[] {
  const want = Array.from({ length: shardCount }, (_, s) => Math.floor(BUCKETS / shardCount) + (s < BUCKETS % shardCount ? 1 : 0));
  const owned: number[][] = Array.from({ length: shardCount }, () => []);
  for (const [b, s] of map.entries()) {
    if (s >= shardCount) throw new Error(`bucket ${b} is on shard-${s}, beyond --to-shards ${shardCount}`);
    owned[s].push(b);
  }
  const surplus: number[] = [];
  for (let s = 0; s < shardCount; s++) while (owned[s].length > want[s]) surplus.push(owned[s].pop()!);
  surplus.sort((a, b) => a - b);
  const moves: { bucket: number; to: number }[] = [];
  for (let s = 0; s < shardCount; s++) {
    for (let have = owned[s].length; have < want[s]; have++) moves.push({ bucket: surplus.shift()!, to: s });
  }
  return moves.sort((a, b) => a.bucket - b.bucket);
}

/**
 * The mover's duty cycle. Each step it takes on a shard is followed by a rest of took × (100 − share) / share,
 * so its statements are in flight at most `sharePct` % of the time. The time a step takes is what the shard
 * gives it: on a shard busy with live writes (queued behind them, or behind a CPU quota) the same chunk takes
 * longer and buys a longer rest, so the copy backs off exactly when the writes need the shard. One cycle for
 * all workers: their steps' times add up, so moving N buckets at once hides latency but does not multiply the
 * share. `minRestMs` (RESHARD_THROTTLE_MS) is the least rest after a step.
 */
export class DutyCycle {
  private resumeAt = 0;
  /** Total rest handed out (ms): for the log and the benchmark. */
  restedMs = 0;

  constructor(
    private readonly sharePct: number,
    private readonly minRestMs: number,
  ) {
    if (!(sharePct > 0 && sharePct <= 100)) throw new Error(`duty cycle share must be in (0, 100], got ${sharePct}`);
  }

  /** The rest a step of `tookMs` buys (before the workers' rests are queued one after another). */
  restFor(tookMs: number): number {
    return Math.max(this.minRestMs, (tookMs * (100 - this.sharePct)) / this.sharePct);
  }

  /** Call after a step that took `tookMs`: resolves when the mover may take its next step. */
  async rest(tookMs: number): Promise<void> {
    const now = performance.now();
    this.resumeAt = Math.max(this.resumeAt, now) + this.restFor(tookMs);
    const wait = this.resumeAt - now;
    if (wait <= 0) return;
    this.restedMs += wait;
    await sleep(wait);
  }

  /** Runs a step, then rests in proportion to its time. */
  async step<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const r = await fn();
    await this.rest(performance.now() - t0);
    return r;
  }
}

export class BucketMover {
  private failpointArmed: boolean;
  private readonly duty: DutyCycle;

  constructor(
    private readonly catalog: DataSource,
    private readonly shards: DbNode[],
    private readonly o: MoverOptions,
  ) {
    this.failpointArmed = !!o.failpoint;
    this.duty = new DutyCycle(o.sharePct ?? 100, o.throttleMs);
  }

  private log(line: string) {
    this.o.log?.(line);
  }

  async map(): Promise<number[]> {
    const map = new Array<number>(BUCKETS).fill(-1);
    for (const r of await this.catalog.query('SELECT bucket, shard FROM shard_buckets')) map[Number(r.bucket)] = Number(r.shard);
    return map;
  }

  private async moveRow(bucket: number): Promise<{ state: MoveState; from: number; to: number; copyCursor: string; highWater: string; rowsCopied: number; mapVersion: number | null; movedAt: Date | null; pauseMs: number | null } | null> {
    const [r] = await this.catalog.query('SELECT * FROM shard_moves WHERE bucket = ?', [bucket]);
    if (!r) return null;
    return {
      state: r.state,
      from: Number(r.from_shard),
      to: Number(r.to_shard),
      copyCursor: String(r.copy_cursor),
      highWater: String(r.high_water),
      rowsCopied: Number(r.rows_copied),
      mapVersion: r.map_version == null ? null : Number(r.map_version),
      movedAt: r.moved_at ? new Date(r.moved_at) : null,
      pauseMs: r.pause_ms == null ? null : Number(r.pause_ms),
    };
  }

  private async setState(bucket: number, state: MoveState, extra: Record<string, unknown> = {}) {
    const cols = Object.keys(extra);
    await this.catalog.query(`UPDATE shard_moves SET state = ?${cols.map((c) => `, ${c} = ?`).join('')} WHERE bucket = ?`, [state, ...cols.map((c) => extra[c]), bucket]);
  }

  private shard(i: number): DbNode {
    const s = this.shards[i];
    if (!s) throw new Error(`shard-${i} is not configured (DB_SHARD_URLS has ${this.shards.length})`);
    return s;
  }

  /** What `move` would do, per bucket, without doing it. */
  async plan(buckets: number[], to: number): Promise<PlannedMove[]> {
    this.shard(to);
    const map = await this.map();
    const recorded = new Map<number, { state: MoveState; from: number; to: number }>();
    if (buckets.length) {
      for (const r of await this.catalog.query(`SELECT bucket, state, from_shard, to_shard FROM shard_moves WHERE state NOT IN ('cleaned', 'aborted') AND bucket IN (${buckets.map(() => '?').join(',')})`, buckets)) {
        recorded.set(Number(r.bucket), { state: r.state, from: Number(r.from_shard), to: Number(r.to_shard) });
      }
    }
    const out: PlannedMove[] = [];
    for (const bucket of buckets) {
      const live = recorded.get(bucket);
      if (live && live.to !== to) throw new Error(`bucket ${bucket} is being moved to shard-${live.to} (${live.state}); finish that move first (--to ${live.to})`);
      const from = live ? live.from : map[bucket];
      out.push({ bucket, from, to, state: live ? live.state : from === to ? 'in place' : 'new', orders: 0 });
    }
    // One count per source shard, not one per bucket.
    for (const from of new Set(out.filter((p) => p.state !== 'in place').map((p) => p.from))) {
      const mine = out.filter((p) => p.from === from && p.state !== 'in place');
      const counts = new Map<number, number>();
      for (const r of await this.shard(from).ds.query(`SELECT bucket, COUNT(*) AS n FROM orders WHERE bucket IN (${mine.map(() => '?').join(',')}) GROUP BY bucket`, mine.map((p) => p.bucket))) {
        counts.set(Number(r.bucket), Number(r.n));
      }
      for (const p of mine) p.orders = counts.get(p.bucket) ?? 0;
    }
    return out;
  }

  /** Move `buckets` to shard `to`, one bucket after another, resuming recorded moves. One mover at a time. */
  async move(buckets: number[], to: number): Promise<MoveResult> {
    const qr = this.catalog.createQueryRunner();
    await qr.connect();
    try {
      const [lock] = await qr.query('SELECT GET_LOCK(?, 0) AS ok', [MOVE_LOCK]);
      if (Number(lock.ok) !== 1) throw new Error('another mover is running (lock mallscale_reshard is held)');
      try {
        const plan = await this.plan(buckets, to);
        const total = plan.reduce((n, p) => n + p.orders, 0);
        const t0 = performance.now();
        let copied = 0;
        let done = 0;
        const results: BucketResult[] = [];
        const todo = plan.filter((p) => p.state !== 'in place');
        // `concurrency` workers take the next bucket; rows in flight count towards the progress line.
        const inFlight = new Map<number, number>();
        const worker = async () => {
          for (let p = todo.shift(); p; p = todo.shift()) {
            const bucket = p.bucket;
            const progress = (rows: number, phase: MoveState) => {
              inFlight.set(bucket, rows);
              const now = copied + [...inFlight.values()].reduce((a, b) => a + b, 0);
              const secs = (performance.now() - t0) / 1000;
              const rate = secs > 0 ? now / secs : 0;
              this.o.onProgress?.({ bucket, bucketIndex: done + 1, buckets: plan.length, rowsCopied: now, rowsTotal: total, rowsPerSecond: rate, etaSeconds: rate > 0 ? Math.max(0, (total - now) / rate) : null, phase });
            };
            const r = await this.moveOne(bucket, to, progress);
            inFlight.delete(bucket);
            copied += r.rowsCopied;
            done++;
            results.push(r);
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency ?? 1) }, worker));
        results.sort((a, b) => a.bucket - b.bucket);
        const copySeconds = (performance.now() - t0) / 1000;
        return { buckets: results, rowsCopied: copied, copySeconds, rowsPerSecond: copySeconds > 0 ? copied / copySeconds : 0, restedSeconds: this.duty.restedMs / 1000 };
      } finally {
        await qr.query('SELECT RELEASE_LOCK(?)', [MOVE_LOCK]);
      }
    } finally {
      await qr.release();
    }
  }

  /** Clean up every moved bucket whose grace period is over; returns the buckets cleaned. */
  async cleanupDue(): Promise<number[]> {
    const rows = await this.catalog.query("SELECT bucket FROM shard_moves WHERE state = 'moved' AND moved_at <= NOW(3) - INTERVAL ? SECOND ORDER BY bucket", [this.o.cleanupGraceSeconds]);
    const done: number[] = [];
    for (const r of rows) {
      const row = (await this.moveRow(Number(r.bucket)))!;
      await this.cleanup(Number(r.bucket), row.from);
      done.push(Number(r.bucket));
    }
    return done;
  }

  private async moveOne(bucket: number, to: number, progress: (rows: number, phase: MoveState) => void): Promise<BucketResult> {
    let row = await this.moveRow(bucket);
    if (!row || row.state === 'cleaned' || row.state === 'aborted') {
      // One row of the map, not all 1024 (a catalog read per bucket moved).
      const [m] = await this.catalog.query('SELECT shard FROM shard_buckets WHERE bucket = ?', [bucket]);
      const from = m ? Number(m.shard) : -1;
      await this.duty.step(() => this.start(bucket, from, to));
      row = (await this.moveRow(bucket))!;
    }
    const { from } = row;
    const S = this.shard(from).ds;
    const T = this.shard(to).ds;
    const result: BucketResult = { bucket, from, to, rowsCopied: 0, deltaRows: 0, chunksVerified: 0, pauseMs: row.pauseMs, phases: null, cutoverFrom: null, cutoverTo: null, mapVersion: row.mapVersion, cleaned: false };
    if (row.state === 'copying') {
      result.rowsCopied = await this.copy(bucket, S, T, row.copyCursor, (n) => progress(n, 'copying'));
      await this.duty.step(() => this.copyKeys(bucket, S, T));
      await this.setState(bucket, 'copied');
      row.state = 'copied';
    }
    if (row.state === 'copied') {
      result.deltaRows += await this.duty.step(() => this.catchUp(bucket, S, T));
      const { chunks, highWater } = await this.verify(bucket, S, T);
      result.chunksVerified = chunks;
      await this.setState(bucket, 'verified', { high_water: highWater });
      row.state = 'verified';
      row.highWater = highWater;
    }
    if (row.state === 'verified' || row.state === 'cutover') {
      // Rested after, never inside: a rest between the catch-up and the freeze would only grow the last delta.
      const c = await this.duty.step(() => this.cutover(bucket, from, to, row.highWater, row.state === 'cutover'));
      result.deltaRows += c.deltaRows;
      result.pauseMs = c.pauseMs;
      result.phases = c.phases;
      result.cutoverFrom = c.from;
      result.cutoverTo = c.to;
      result.mapVersion = c.mapVersion;
      row.state = 'moved';
      row.movedAt = new Date();
      progress(0, 'moved');
    }
    if (row.state === 'moved' && this.o.cleanupGraceSeconds === 0) {
      await this.cleanup(bucket, from);
      result.cleaned = true;
    }
    this.log(`bucket ${bucket}: shard-${from} -> shard-${to} ${result.cleaned ? 'cleaned' : row.state} (copied ${result.rowsCopied}, delta ${result.deltaRows}, ${result.chunksVerified} chunks verified, pause ${result.pauseMs ?? '-'} ms)`);
    return result;
  }

  private async start(bucket: number, from: number, to: number) {
    if (from === to) throw new Error(`bucket ${bucket} is already on shard-${to}`);
    const S = this.shard(from).ds;
    const T = this.shard(to).ds;
    const [tf] = await T.query('SELECT state FROM bucket_fence WHERE bucket = ?', [bucket]);
    const [tc] = await T.query('SELECT COUNT(*) AS n FROM orders WHERE bucket = ?', [bucket]);
    if (Number(tc.n) > 0 && tf?.state !== 'incoming') throw new Error(`shard-${to} already holds ${tc.n} orders of bucket ${bucket} (fence ${tf?.state ?? 'none'}): clean it up first`);
    // Target first: it refuses the bucket until the cut-over. Then the source starts logging; the UPDATE/INSERT
    // waits for writes in flight, so every write that commits after it is in bucket_changes.
    await T.query("INSERT INTO bucket_fence (bucket, state, logging) VALUES (?, 'incoming', 0) ON DUPLICATE KEY UPDATE state = 'incoming', logging = 0", [bucket]);
    await S.query('DELETE FROM bucket_changes WHERE bucket = ?', [bucket]);
    await S.query("INSERT INTO bucket_fence (bucket, state, logging) VALUES (?, 'owned', 1) ON DUPLICATE KEY UPDATE state = 'owned', logging = 1", [bucket]);
    await this.catalog.query(
      "REPLACE INTO shard_moves (bucket, from_shard, to_shard, state, copy_cursor, high_water, rows_copied) VALUES (?, ?, ?, 'copying', 0, 0, 0)",
      [bucket, from, to],
    );
  }

  /** Keyset copy from `cursor`; returns rows copied. */
  private async copy(bucket: number, S: DataSource, T: DataSource, cursor: string, progress: (rows: number) => void): Promise<number> {
    let copied = 0;
    let chunks = 0;
    for (;;) {
      const t0 = performance.now();
      const orders = await S.query(`SELECT ${ORDER_COLS.join(', ')} FROM orders WHERE bucket = ? AND id > ? ORDER BY id LIMIT ?`, [bucket, cursor, this.o.chunkRows]);
      if (!orders.length) {
        await this.duty.rest(performance.now() - t0);
        return copied;
      }
      const last = String(orders[orders.length - 1].id);
      const items = await S.query(
        `SELECT ${ITEM_COLS.map((c) => `i.${c}`).join(', ')} FROM order_items i JOIN orders o ON o.id = i.order_id AND o.created_at = i.created_at WHERE o.bucket = ? AND o.id > ? AND o.id <= ?`,
        [bucket, cursor, last],
      );
      await T.transaction(async (em) => {
        await insertRows(em, 'orders', ORDER_COLS, orders, 'ignore');
        await insertRows(em, 'order_items', ITEM_COLS, items, 'ignore');
      });
      cursor = last;
      copied += orders.length;
      await this.catalog.query('UPDATE shard_moves SET copy_cursor = ?, rows_copied = rows_copied + ? WHERE bucket = ?', [cursor, orders.length, bucket]);
      progress(copied);
      if (++chunks === 1) this.crashAt('mid-copy');
      await this.duty.rest(performance.now() - t0);
    }
  }

  /**
   * The bucket's finished idempotency keys (pending ones belong to attempts the source will refuse). A finished
   * key names the order it wrote, so the keys are found from the bucket's orders (index on bucket, then the
   * keys' primary key on user_id), never by hashing every key of the shard.
   */
  private async copyKeys(bucket: number, S: DataSource, T: DataSource) {
    const keys = await S.query(
      `SELECT STRAIGHT_JOIN ${KEY_COLS.map((c) => `k.${c}`).join(', ')} FROM orders o JOIN idempotency_keys k ON k.user_id = o.user_id AND k.order_id = o.id WHERE o.bucket = ? AND k.status = 'done'`,
      [bucket],
    );
    for (let i = 0; i < keys.length; i += this.o.chunkRows) await insertRows(T, 'idempotency_keys', KEY_COLS, keys.slice(i, i + this.o.chunkRows), 'upsert');
  }

  /** Copies the logged orders the target lacks (with their items and keys); returns how many. */
  private async catchUp(bucket: number, S: DataSource, T: DataSource): Promise<number> {
    const changes: { order_id: string }[] = await S.query('SELECT DISTINCT order_id FROM bucket_changes WHERE bucket = ?', [bucket]);
    let n = 0;
    for (let i = 0; i < changes.length; i += 500) {
      const ids = changes.slice(i, i + 500).map((c) => String(c.order_id));
      const present = new Set((await T.query(`SELECT id FROM orders WHERE id IN (${ids.map(() => '?').join(',')})`, ids)).map((r: { id: string }) => String(r.id)));
      const missing = ids.filter((id) => !present.has(id));
      if (!missing.length) continue;
      const marks = missing.map(() => '?').join(',');
      const orders = await S.query(`SELECT ${ORDER_COLS.join(', ')} FROM orders WHERE id IN (${marks})`, missing);
      const items = await S.query(`SELECT ${ITEM_COLS.join(', ')} FROM order_items WHERE order_id IN (${marks})`, missing);
      const keys = await S.query(
        `SELECT ${KEY_COLS.map((c) => `k.${c}`).join(', ')} FROM idempotency_keys k JOIN bucket_changes c ON c.user_id = k.user_id AND c.idem_key = k.idem_key WHERE c.bucket = ? AND c.order_id IN (${marks}) AND k.status = 'done'`,
        [bucket, ...missing],
      );
      await T.transaction(async (em) => {
        await insertRows(em, 'orders', ORDER_COLS, orders, 'ignore');
        await insertRows(em, 'order_items', ITEM_COLS, items, 'ignore');
        await insertRows(em, 'idempotency_keys', KEY_COLS, keys, 'upsert');
      });
      n += orders.length;
    }
    return n;
  }

  private async sums(ds: DataSource, bucket: number, lo: string, hi: string | null): Promise<string> {
    const range = `o.bucket = ? AND o.id > ?${hi === null ? '' : ' AND o.id <= ?'}`;
    const params = hi === null ? [bucket, lo] : [bucket, lo, hi];
    const [[o], [i]] = await Promise.all([
      ds.query(`SELECT ${ORDER_SUM} FROM orders o WHERE ${range}`, params),
      ds.query(`SELECT ${ITEM_SUM} FROM order_items i JOIN orders o ON o.id = i.order_id AND o.created_at = i.created_at WHERE ${range}`, params),
    ]);
    return `${o.n}/${o.c}/${i.n}/${i.c}`;
  }

  /**
   * VDiff-style: chunks of `chunkRows` ids up to the source's current last id; each chunk's counts and
   * checksums (orders, items) equal on both sides. A chunk that differs (a write landed in it since the
   * copy) is caught up and compared again, three times at most.
   */
  private async verify(bucket: number, S: DataSource, T: DataSource): Promise<{ chunks: number; highWater: string }> {
    const [m] = await S.query('SELECT COALESCE(MAX(id), 0) AS hw FROM orders WHERE bucket = ?', [bucket]);
    const highWater = String(m.hw);
    let lo = '0';
    let chunks = 0;
    while (BigInt(lo) < BigInt(highWater)) {
      const t0 = performance.now();
      const [b] = await S.query('SELECT id FROM orders WHERE bucket = ? AND id > ? ORDER BY id LIMIT 1 OFFSET ?', [bucket, lo, this.o.chunkRows - 1]);
      const hi = b && BigInt(b.id) < BigInt(highWater) ? String(b.id) : highWater;
      for (let attempt = 1; ; attempt++) {
        const [a, z] = await Promise.all([this.sums(S, bucket, lo, hi), this.sums(T, bucket, lo, hi)]);
        if (a === z) break;
        if (attempt === 3) throw new VerifyFailed(`bucket ${bucket}: chunk (${lo}, ${hi}] differs: shard ${a} vs target ${z} (orders n/checksum/items n/checksum)`);
        await this.catchUp(bucket, S, T);
      }
      chunks++;
      lo = hi;
      await this.duty.rest(performance.now() - t0);
    }
    return { chunks, highWater };
  }

  /** Counts and checksums of what can still change under the freeze: every order of the bucket (count) and the rows after `highWater`. One statement. */
  private async tailSums(ds: DataSource, bucket: number, highWater: string): Promise<string> {
    const [r] = await ds.query(
      `SELECT (SELECT COUNT(*) FROM orders WHERE bucket = ?) AS total, t.n, t.c, it.n AS itn, it.c AS itc
         FROM (SELECT ${ORDER_SUM} FROM orders o WHERE o.bucket = ? AND o.id > ?) t,
              (SELECT ${ITEM_SUM} FROM order_items i JOIN orders o ON o.id = i.order_id AND o.created_at = i.created_at WHERE o.bucket = ? AND o.id > ?) it`,
      [bucket, bucket, highWater, bucket, highWater],
    );
    return `${r.total}:${r.n}/${r.c}/${r.itn}/${r.itc}`;
  }

  /**
   * The cut-over. Before the pause, catch up until a pass finds nothing new, so the freeze finds (almost) no
   * delta. The pause: freeze (bounded), compare, copy a last delta only if the comparison differs, flip the map,
   * target `owned`. Then the source says `moved` (a write it refuses as `frozen` re-routes as soon as its router
   * sees the flip, so that update is not part of the pause). `resumed`: a crash left the bucket in cut-over;
   * every step is idempotent, and a map already flipped is not flipped twice.
   */
  private async cutover(bucket: number, from: number, to: number, highWater: string, resumed: boolean): Promise<{ deltaRows: number; pauseMs: number; phases: CutoverPhases; mapVersion: number; from: number; to: number }> {
    const S = this.shard(from).ds;
    const T = this.shard(to).ds;
    const ph: CutoverPhases = { catchUpMs: 0, freezeMs: 0, freezeAttempts: 0, checkMs: 0, deltaMs: 0, flipMs: 0, ownMs: 0 };
    let lap = performance.now();
    const phase = (k: Exclude<keyof CutoverPhases, 'freezeAttempts'>) => {
      const now = performance.now();
      ph[k] = Math.round(now - lap);
      lap = now;
    };
    let deltaRows = 0;
    let mapVersion: number | null = null;
    let t0 = performance.now();
    let from0 = Date.now();
    const flipped = resumed && (await this.map())[bucket] === to;
    if (!flipped) {
      await this.setState(bucket, 'cutover');
      for (let attempt = 1; ; attempt++) {
        lap = performance.now();
        // Writes still run: each pass copies what the last one missed; the freeze then waits for the last moments only.
        for (let pass = 0; pass < 3 && (await this.catchUp(bucket, S, T)) > 0; pass++);
        phase('catchUpMs');
        const fz = await freezeConnection(S);
        t0 = lap = performance.now();
        from0 = Date.now();
        ph.freezeAttempts = attempt;
        const frozen = await fz.freeze(bucket, this.o.freezeWaitMs ?? 300).finally(() => fz.release());
        phase('freezeMs');
        if (frozen) break;
        // Writes held the fence row longer than the bound: the freeze was withdrawn (nothing changed) and the
        // writes queued behind it went on. Let them drain, catch up again, try again.
        if (attempt >= (this.o.freezeAttempts ?? 5)) {
          await this.setState(bucket, 'verified');
          throw new FreezeTimedOut(`bucket ${bucket}: writes held its fence on shard-${from} longer than ${this.o.freezeWaitMs ?? 300} ms, ${attempt} times; the bucket stays on shard-${from} (rerun to try again)`);
        }
        await sleep(this.o.freezeWaitMs ?? 300);
      }
      // Frozen: the source no longer changes. Compare first; a delta is copied only if the sides differ.
      const [a, z] = await Promise.all([this.tailSums(S, bucket, highWater), this.tailSums(T, bucket, highWater)]);
      phase('checkMs');
      if (a !== z) {
        deltaRows = await this.catchUp(bucket, S, T);
        const z2 = await this.tailSums(T, bucket, highWater);
        phase('deltaMs');
        if (a !== z2) {
          // Not the same data: give the bucket back to the source and stop; a rerun catches up and verifies again.
          await S.query("UPDATE bucket_fence SET state = 'owned', logging = 1 WHERE bucket = ?", [bucket]);
          await this.bumpMapVersion(); // the writers waiting for a flip retry now (the map is unchanged)
          await this.setState(bucket, 'copied');
          throw new VerifyFailed(`bucket ${bucket}: after the last delta the source has ${a} and the target ${z2} (orders total:tail n/checksum/items n/checksum); cut-over undone`);
        }
      }
      this.crashAt('mid-cutover');
      // The flip and the version bump in one statement (atomic like a transaction, one round trip instead of four;
      // the version row, every flip's hot spot, is locked for that statement only). LAST_INSERT_ID(expr) hands
      // the new version back in the statement's answer.
      const res = await this.catalog.query(
        'UPDATE shard_buckets b, shard_map_version v SET b.shard = ?, v.version = LAST_INSERT_ID(v.version + 1) WHERE b.bucket = ? AND v.id = 1',
        [to, bucket],
      );
      mapVersion = Number((res as { insertId?: number })?.insertId ?? 0);
      if (!(mapVersion > 0)) mapVersion = Number((await this.catalog.query('SELECT version FROM shard_map_version WHERE id = 1'))[0].version);
      phase('flipMs');
    } else {
      // Resumed after the flip: its version, or (a crash before it was recorded) the current one.
      const [[m], [v]] = await Promise.all([
        this.catalog.query('SELECT map_version FROM shard_moves WHERE bucket = ?', [bucket]),
        this.catalog.query('SELECT version FROM shard_map_version WHERE id = 1'),
      ]);
      mapVersion = Number(m.map_version ?? v.version);
      lap = t0 = performance.now();
    }
    // The target first: the pause ends when it takes the bucket's writes.
    const moved = Promise.all([
      S.query("UPDATE bucket_fence SET state = 'moved', logging = 0, map_version = ? WHERE bucket = ?", [mapVersion, bucket]),
      this.catalog.query('UPDATE shard_moves SET map_version = ? WHERE bucket = ?', [mapVersion, bucket]),
    ]);
    moved.catch(() => undefined); // awaited below
    await T.query("UPDATE bucket_fence SET state = 'owned', logging = 0, map_version = ? WHERE bucket = ?", [mapVersion, bucket]);
    phase('ownMs');
    const pauseMs = Math.round(performance.now() - t0);
    const to0 = Date.now();
    await moved;
    await this.setState(bucket, 'moved', { moved_at: new Date(), pause_ms: pauseMs });
    return { deltaRows, pauseMs, phases: ph, mapVersion, from: from0, to: to0 };
  }

  /**
   * Roll moves back before their map flip: the source's fence `owned` again (a frozen bucket takes writes at
   * once), logging off, the target's copy deleted and its fence `moved` (it never owned the bucket: it keeps
   * refusing it), the move `aborted`. Refused, changing nothing, if any bucket is past its flip: the way back is
   * then a move in the other direction. Takes the mover's lock: a mover that is running must be stopped first
   * (a dead one has freed it). Idempotent: an abort that crashed is finished by running it again.
   */
  async abort(buckets: number[]): Promise<{ aborted: AbortResult[]; nothingToAbort: number[] }> {
    const qr = this.catalog.createQueryRunner();
    await qr.connect();
    try {
      const [lock] = await qr.query('SELECT GET_LOCK(?, 0) AS ok', [MOVE_LOCK]);
      if (Number(lock.ok) !== 1) throw new AbortRefused('a mover is running (lock mallscale_reshard is held): stop it first (Ctrl-C; its buckets keep their recorded step), then abort');
      try {
        const map = await this.map();
        const rows = new Map<number, NonNullable<Awaited<ReturnType<BucketMover['moveRow']>>>>();
        for (const b of buckets) {
          const r = await this.moveRow(b);
          if (r && r.state !== 'cleaned') rows.set(b, r);
        }
        const past = [...rows.entries()].filter(([b, r]) => r.state === 'moved' || (r.state !== 'aborted' && map[b] === r.to));
        if (past.length) {
          const list = past.map(([b]) => b).join(',');
          const { from, to } = past[0][1];
          throw new AbortRefused(
            `bucket${past.length > 1 ? 's' : ''} ${list} already flipped to shard-${to} in the map: abort only rolls back a move before its flip. ` +
              `Finish it (\`npm run shards -- move --buckets ${list} --to ${to}\`) and move it back (\`npm run shards -- move --buckets ${list} --to ${from}\`)`,
          );
        }
        const aborted: AbortResult[] = [];
        for (const [bucket, r] of rows) aborted.push(await this.abortOne(bucket, r.from, r.to, r.state));
        return { aborted, nothingToAbort: buckets.filter((b) => !rows.has(b)) };
      } finally {
        await qr.query('SELECT RELEASE_LOCK(?)', [MOVE_LOCK]);
      }
    } finally {
      await qr.release();
    }
  }

  private async abortOne(bucket: number, from: number, to: number, was: MoveState): Promise<AbortResult> {
    const S = this.shard(from).ds;
    const T = this.shard(to).ds;
    // Recorded first: from here a crash is finished by running abort again, and a move starts the bucket afresh.
    await this.setState(bucket, 'aborted');
    // The source first: its writes go on at once (writers refused by a frozen bucket are waiting), unlogged.
    await S.query("INSERT INTO bucket_fence (bucket, state, logging) VALUES (?, 'owned', 0) ON DUPLICATE KEY UPDATE state = 'owned', logging = 0", [bucket]);
    // The map itself is unchanged, but its version moves: writers waiting for a frozen bucket's flip (they watch
    // the version) retry at once instead of at the end of their SHARD_FENCE_WAIT_MS.
    const version = await this.bumpMapVersion();
    await T.query("INSERT INTO bucket_fence (bucket, state, logging, map_version) VALUES (?, 'moved', 0, ?) ON DUPLICATE KEY UPDATE state = 'moved', logging = 0, map_version = VALUES(map_version)", [bucket, version]);
    // The keys the copy brought: every key of the bucket's users (the target does not own the bucket, so none of
    // them belongs there), users found from the target's copy and the source's change log.
    const users = new Set<string>();
    for (const r of await T.query('SELECT DISTINCT user_id FROM orders WHERE bucket = ?', [bucket])) users.add(String(r.user_id));
    for (const r of await S.query('SELECT DISTINCT user_id FROM bucket_changes WHERE bucket = ?', [bucket])) users.add(String(r.user_id));
    const list = [...users];
    for (let i = 0; i < list.length; i += this.o.chunkRows) {
      const chunk = list.slice(i, i + this.o.chunkRows);
      await T.query(`DELETE FROM idempotency_keys WHERE user_id IN (${chunk.map(() => '?').join(',')})`, chunk);
    }
    const targetRowsDeleted = await this.deleteOrders(T, bucket);
    await S.query('DELETE FROM bucket_changes WHERE bucket = ?', [bucket]);
    this.log(`bucket ${bucket}: move shard-${from} -> shard-${to} aborted at ${was}; shard-${from} owns it, ${targetRowsDeleted} copied orders deleted on shard-${to}`);
    return { bucket, from, to, was, targetRowsDeleted };
  }

  /** Bumps the map's version (routers waiting on it reload), returns the new one. */
  private async bumpMapVersion(): Promise<number> {
    const res = await this.catalog.query('UPDATE shard_map_version SET version = LAST_INSERT_ID(version + 1) WHERE id = 1');
    const v = Number((res as { insertId?: number })?.insertId ?? 0);
    return v > 0 ? v : Number((await this.catalog.query('SELECT version FROM shard_map_version WHERE id = 1'))[0].version);
  }

  /** Deletes a bucket's orders and their items on `ds`, in chunks; returns the orders deleted. */
  private async deleteOrders(ds: DataSource, bucket: number): Promise<number> {
    let n = 0;
    for (;;) {
      const t0 = performance.now();
      const ids: { id: string }[] = await ds.query('SELECT id FROM orders WHERE bucket = ? ORDER BY id LIMIT ?', [bucket, this.o.chunkRows]);
      if (!ids.length) return n;
      const marks = ids.map(() => '?').join(',');
      const list = ids.map((r) => String(r.id));
      // READ COMMITTED: record locks only, no gap locks next to the live inserts of the buckets this shard keeps.
      await ds.transaction('READ COMMITTED', async (em) => {
        await em.query(`DELETE FROM order_items WHERE order_id IN (${marks})`, list);
        await em.query(`DELETE FROM orders WHERE id IN (${marks})`, list);
      });
      n += ids.length;
      await this.duty.rest(performance.now() - t0);
    }
  }

  /** Deletes the moved bucket's rows from its old shard, in chunks; its fence stays `moved`. */
  private async cleanup(bucket: number, from: number) {
    const S = this.shard(from).ds;
    // Keys first, found through the orders they wrote (the orders go next). Keys without an order (attempts
    // the fence refused) are the PartitionMaintainer's daily purge's.
    await S.transaction('READ COMMITTED', (em) => em.query('DELETE k FROM idempotency_keys k JOIN orders o ON k.user_id = o.user_id AND k.order_id = o.id WHERE o.bucket = ?', [bucket]));
    await this.deleteOrders(S, bucket);
    await S.query('DELETE FROM bucket_changes WHERE bucket = ?', [bucket]);
    await this.setState(bucket, 'cleaned', { cleaned_at: new Date() });
  }

  private crashAt(point: MoverFailpoint) {
    if (this.failpointArmed && this.o.failpoint === point) {
      this.failpointArmed = false;
      process.kill(process.pid, 'SIGKILL');
    }
  }
}

async function insertRows(on: Pick<DataSource, 'query'>, table: string, cols: string[], rows: Record<string, unknown>[], mode: 'ignore' | 'upsert') {
  if (!rows.length) return;
  const tuple = `(${cols.map(() => '?').join(', ')})`;
  const sql = `INSERT ${mode === 'ignore' ? 'IGNORE ' : ''}INTO ${table} (${cols.join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}${
    mode === 'upsert' ? ` ON DUPLICATE KEY UPDATE ${cols.map((c) => `${c} = VALUES(${c})`).join(', ')}` : ''
  }`;
  await on.query(sql, rows.flatMap((r) => cols.map((c) => r[c])));
}

/**
 * The freeze on a connection of its own, opened before the pause starts. The freeze is an UPDATE of the fence
 * row: it waits for the bucket's writes in flight (their shared locks). That wait is bounded in ms: InnoDB's
 * lock wait timeout counts whole seconds, so after `waitMs` the statement is interrupted (KILL QUERY on this
 * connection: the same account may), nothing changes, and the writes queued behind it go on.
 */
async function freezeConnection(ds: DataSource): Promise<{ freeze: (bucket: number, waitMs: number) => Promise<boolean>; release: () => Promise<void> }> {
  const qr = ds.createQueryRunner();
  await qr.connect();
  const [{ id }] = await qr.query('SELECT CONNECTION_ID() AS id');
  return {
    release: () => qr.release(),
    async freeze(bucket, waitMs) {
      let kill: Promise<unknown> | null = null;
      const timer = setTimeout(() => {
        kill = ds.query(`KILL QUERY ${Number(id)}`).catch(() => undefined);
      }, waitMs);
      try {
        await qr.query("UPDATE bucket_fence SET state = 'frozen' WHERE bucket = ?", [bucket]);
        return true;
      } catch (e) {
        if (!kill) throw e;
      } finally {
        clearTimeout(timer);
        // A KILL sent as the statement ended lands before the connection serves anything else (the server
        // clears it at the next statement).
        await kill;
      }
      // Interrupted: the statement was rolled back, unless it had already committed when the KILL came.
      const [f] = await qr.query('SELECT state FROM bucket_fence WHERE bucket = ?', [bucket]);
      return f?.state === 'frozen';
    },
  };
}
