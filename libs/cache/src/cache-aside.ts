/**
 * CacheAside<T>: read-through of one key space, L1 (in-process LRU) → L2 (Redis) → loader (the database).
 *
 * The design points, each with its trade-off:
 * - L1 is bounded by entries AND bytes: a hit costs no I/O at all. A write reaches every L1 through the
 *   invalidation bus; a broadcast the bus may have missed is bounded by its heartbeat (InvalidationBus,
 *   Liveness), not by the L1 TTL: while the bus is not live, L1 entries live at most its silence bound.
 * - Single-flight: concurrent misses of one key in one process share one load (`coalesced`).
 * - Lease (Facebook memcache style): on an L2 miss a process takes `SET <key>:lease <token> NX PX`;
 *   only the holder loads and fills, the others poll L2 briefly and read what it filled. A holder that
 *   dies lets the lease expire and a waiter takes over. A cold hot key costs the database ONE query.
 * - The lease is also the stale-set guard: an invalidation deletes the value AND the lease, and the
 *   fill is a Lua "SET only if the lease is still mine", so a loader that read the old row before a write
 *   cannot put it back after the write's invalidation. L1 has the same guard with a local sequence.
 * - XFetch (probabilistic early expiration, Vattani et al.): a hit refreshes in the background with
 *   probability rising as expiry nears (scaled by how long a load takes), so hot keys never expire under load.
 * - TTL jitter spreads the expiries of keys filled together; misses are cached briefly (negative entries).
 * - Redis failures are answers, not errors (GuardedRedis): the read goes to the database.
 * - With `encode`, an L1 entry also keeps the value's encoded response (bytes + ETag + version), made once
 *   per fill: an L1 hit is then a lookup and a socket write, no serialization. It lives and dies with the
 *   entry, so invalidation covers it exactly as it covers the value (L2 never stores it).
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { Metrics } from '#libs/core';
import type { GuardedRedis } from './guarded-redis.js';
import type { InvalidationBus } from './invalidation-bus.js';

export type CacheMode = 'off' | 'l2' | 'l1l2';
/** Which tier answered: the X-Cache header. `coalesced` = waited for another request's load in this process. */
export type CacheSource = 'l1' | 'l2' | 'db' | 'coalesced' | 'negative';

/** A value's encoded response, made once when it enters L1: the bytes to write and their validator. */
export interface Encoded {
  body: Buffer;
  /** A strong entity tag (quoted), e.g. `"3-q8Yt0mJc1aZr"`: changes with the bytes. */
  etag: string;
  version: number | null;
}

export interface CacheResult<T> {
  value: T | null;
  source: CacheSource;
  /** Present when the value came from (or just went into) an L1 that encodes (`encode` option). */
  encoded?: Encoded;
}

export type Loader<T> = () => Promise<T | null>;

export interface CacheAsideOptions<T = unknown> {
  /** Key space name, e.g. 'product'; also the `cache` metric label. */
  name: string;
  /** Prefix of every Redis key and of the invalidation channel, e.g. the database name. */
  prefix: string;
  mode: CacheMode;
  l1: { maxEntries: number; maxBytes: number; ttlMs: number };
  l2: { ttlMs: number; jitterPct: number; negativeTtlMs: number };
  lease: { ttlMs: number; waitMs: number };
  /** XFetch beta; 0 disables early refresh. */
  xfetchBeta: number;
  /**
   * The row version of a value (products.version). With it, an invalidation leaves a "minimum version"
   * tombstone and fills of older rows are refused: loaders may read lagging replicas.
   */
  versionOf?: (value: T) => number;
  /** Encode a value for L1 (the response bytes + ETag); see Encoded. Only used in l1l2 mode. */
  encode?: (value: T) => Encoded;
}

/** What is stored in L2 (and L1): the value (null = known absent), logical expiry, load time in ms. */
interface Envelope<T> {
  v: T | null;
  e: number;
  d: number;
  /** L1 only, never serialized: the encoded response (CacheAsideOptions.encode). */
  b?: Encoded;
}

/**
 * The fill. KEYS: value, lease, min-version tombstone; ARGV: token, payload, ttl ms, loaded version
 * ('' = absent or unversioned). 1 = stored; 0 = the lease is no longer ours (an invalidation deleted it);
 * -1 = the loaded row is older than the last write's version (a lagging replica answered the loader).
 */
const SET_IF_LEASE = `if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local minv = redis.call('GET', KEYS[3])
if minv then
  local stale
  if ARGV[4] == '' then stale = (minv ~= 'deleted') else stale = (minv == 'deleted' or tonumber(ARGV[4]) < tonumber(minv)) end
  if stale then
    redis.call('DEL', KEYS[2])
    return -1
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1`;

/** Gives a lease back only if it is still ours (it may have expired and been taken by another process). */
const RELEASE_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CacheAside<T> {
  private readonly l1: LRUCache<string, Envelope<T>> | null;
  private readonly inflight = new Map<string, Promise<CacheResult<T>>>();
  private readonly refreshing = new Set<string>();
  /** Local invalidation sequence: an L1 fill that started before an invalidation of its key is refused. */
  private seq = 0;
  private clearedAt = 0;
  private readonly invalidatedAt = new LRUCache<string, number>({ max: 10_000 });
  private readonly pendingDeletes = new Map<string, number | 'deleted' | undefined>();
  private readonly retryTimer: NodeJS.Timeout;
  private readonly keyPrefix: string;
  /** The L1-hit counter's child for this key space, looked up once: the hit path does no label hashing. */
  private readonly l1Hits: { inc: () => void };
  private readonly m: {
    hits: Counter<'cache' | 'tier'>;
    misses: Counter<'cache'>;
    loads: Counter<'cache'>;
    coalesced: Counter<'cache'>;
    leaseWaits: Counter<'cache'>;
    leaseTimeouts: Counter<'cache'>;
    staleSets: Counter<'cache' | 'tier'>;
    early: Counter<'cache'>;
    negative: Counter<'cache'>;
  };

  constructor(
    readonly opts: CacheAsideOptions<T>,
    private readonly redis: GuardedRedis,
    private readonly bus: InvalidationBus | null,
    metrics: Metrics,
  ) {
    this.keyPrefix = `${opts.prefix}${opts.name}:`;
    this.l1 =
      opts.mode === 'l1l2'
        ? new LRUCache<string, Envelope<T>>({ max: opts.l1.maxEntries, maxSize: opts.l1.maxBytes, ttl: opts.l1.ttlMs, ttlAutopurge: false })
        : null;
    this.m = {
      hits: metrics.counter('cache_hits_total', 'Cache hits by tier', ['cache', 'tier']),
      misses: metrics.counter('cache_misses_total', 'Reads that found nothing in L1 or L2', ['cache']),
      loads: metrics.counter('cache_db_loads_total', 'Loader executions (one database query each)', ['cache']),
      coalesced: metrics.counter('cache_coalesced_total', 'Reads that waited for a load already in flight in this process', ['cache']),
      leaseWaits: metrics.counter('cache_lease_waits_total', 'Fills that waited for another process holding the Redis lease', ['cache']),
      leaseTimeouts: metrics.counter('cache_lease_wait_timeouts_total', 'Lease waits that gave up and loaded without filling', ['cache']),
      staleSets: metrics.counter('cache_stale_set_rejections_total', 'Fills refused because the key was invalidated while loading', ['cache', 'tier']),
      early: metrics.counter('cache_early_refresh_total', 'XFetch background refreshes before expiry', ['cache']),
      negative: metrics.counter('cache_negative_hits_total', 'Reads answered by a cached "does not exist"', ['cache']),
    };
    this.l1Hits = this.m.hits.labels(opts.name, 'l1');
    bus?.onInvalidate((key) => {
      if (key.startsWith(this.keyPrefix)) this.dropLocal(key);
    });
    bus?.onResync(() => this.clearL1());
    // Invalidations that could not reach Redis are retried until they do (a stale L2 entry must not
    // outlive a Redis outage that was only a network blip).
    this.retryTimer = setInterval(() => void this.flushPendingDeletes(), 1000);
    this.retryTimer.unref();
  }

  key(id: string): string {
    return this.keyPrefix + id;
  }

  private leaseKey(key: string): string {
    return `${key}:lease`;
  }

  private minVersionKey(key: string): string {
    return `${key}:minv`;
  }

  /** Lua fill under the lease (see SET_IF_LEASE); resolves to its answer, or not ok when Redis failed. */
  private setIfLease(key: string, token: string, env: Envelope<T>, payload: string) {
    const version = env.v !== null && this.opts.versionOf ? String(this.opts.versionOf(env.v)) : '';
    return this.redis.run((r) => r.eval(SET_IF_LEASE, 3, key, this.leaseKey(key), this.minVersionKey(key), token, payload, String(Math.max(1, env.e - Date.now())), version));
  }

  /**
   * The L1 answer for `id`, synchronously (counted as an L1 hit), or undefined when L1 does not hold it: a
   * caller on the hot path answers an L1 hit without a promise and calls `get` for everything else.
   */
  getLocal(id: string): CacheResult<T> | undefined {
    const local = this.l1?.get(this.key(id));
    if (!local) return undefined;
    this.l1Hits.inc();
    return this.answer(local, 'l1');
  }

  /**
   * `loadFresh` (optional) reads the authoritative copy (the primary): used instead of returning a row the
   * fill refused as older than the last write, so a caller never sees a lagging replica's stale row.
   */
  async get(id: string, load: Loader<T>, loadFresh?: Loader<T>): Promise<CacheResult<T>> {
    const name = this.opts.name;
    if (this.opts.mode === 'off') {
      this.m.loads.labels(name).inc();
      return { value: await load(), source: 'db' };
    }
    const local = this.getLocal(id);
    if (local) return local;
    const key = this.key(id);
    const pending = this.inflight.get(key);
    if (pending) {
      this.m.coalesced.labels(name).inc();
      const r = await pending;
      return { ...r, source: r.source === 'negative' ? 'negative' : 'coalesced' };
    }
    const flight = this.fill(key, load, loadFresh).finally(() => this.inflight.delete(key));
    this.inflight.set(key, flight);
    return flight;
  }

  /**
   * After a write has committed: drop the key everywhere (this L1, L2 + its lease, every other L1).
   * `version`: the row version the write produced ('deleted' for a delete); fills of older rows are
   * then refused for one L2 TTL (a replica lagging behind the write cannot put the old row back).
   */
  async invalidate(id: string, version?: number | 'deleted'): Promise<void> {
    if (this.opts.mode === 'off') return;
    const key = this.key(id);
    this.dropLocal(key);
    const del = await this.redis.run((r) => {
      const tx = r.multi().del(key, this.leaseKey(key));
      if (version !== undefined) tx.set(this.minVersionKey(key), String(version), 'PX', this.opts.l2.ttlMs);
      return tx.exec();
    });
    if (!del.ok) this.pendingDeletes.set(key, version);
    if (this.bus) {
      const pub = await this.redis.run(() => this.bus!.publish([key]));
      if (!pub.ok) this.pendingDeletes.set(key, version);
    }
  }

  clearL1(): void {
    this.seq++;
    this.l1?.clear();
    // Any fill in flight started before this point: refuse it in L1 (its key may have been invalidated).
    this.clearedAt = this.seq;
  }

  close(): void {
    clearInterval(this.retryTimer);
  }

  // ------------------------------------------------------------------ internals

  private answer(env: Envelope<T>, tier: 'l1' | 'l2' | 'db'): CacheResult<T> {
    if (env.v === null) {
      if (tier !== 'db') this.m.negative.labels(this.opts.name).inc();
      return { value: null, source: tier === 'db' ? 'db' : 'negative' };
    }
    return env.b ? { value: env.v, source: tier, encoded: env.b } : { value: env.v, source: tier };
  }

  private async fill(key: string, load: Loader<T>, loadFresh?: Loader<T>): Promise<CacheResult<T>> {
    const startSeq = this.seq;
    const cached = await this.redis.run((r) => r.get(key));
    if (!cached.ok) return this.loadBypassingRedis(key, load, startSeq);
    const env = parse<T>(cached.value);
    if (env) {
      this.m.hits.labels(this.opts.name, 'l2').inc();
      if (this.shouldRefreshEarly(env)) void this.refreshEarly(key, load);
      return this.answer(this.setL1(key, env, cached.value!.length, startSeq), 'l2');
    }
    this.m.misses.labels(this.opts.name).inc();
    return this.loadUnderLease(key, load, startSeq, loadFresh);
  }

  private async loadUnderLease(key: string, load: Loader<T>, startSeq: number, loadFresh?: Loader<T>): Promise<CacheResult<T>> {
    const deadline = Date.now() + this.opts.lease.waitMs;
    let pollMs = 5;
    let waited = false;
    for (;;) {
      const token = randomBytes(12).toString('base64url');
      const lease = await this.redis.run((r) => r.set(this.leaseKey(key), token, 'PX', this.opts.lease.ttlMs, 'NX'));
      if (!lease.ok) return this.loadBypassingRedis(key, load, startSeq);
      if (lease.value === 'OK') {
        // Look again under the lease: a holder that filled the key releases its lease, so between our miss
        // and our SET NX the key may have been filled. Loading anyway would be a second query for one key.
        const again = await this.redis.run((r) => r.get(key));
        const filled = again.ok ? parse<T>(again.value) : null;
        if (again.ok && filled) {
          await this.redis.run((r) => r.eval(RELEASE_LEASE, 1, this.leaseKey(key), token));
          return this.answer(this.setL1(key, filled, again.value!.length, startSeq), 'l2');
        }
        const env = await this.loadEnvelope(load);
        const payload = JSON.stringify(env);
        const set = await this.setIfLease(key, token, env, payload);
        if (set.ok && Number(set.value) === -1 && loadFresh) {
          // The row predates the last write (a lagging replica answered): the caller gets the fresh one.
          this.m.staleSets.labels(this.opts.name, 'l2').inc();
          return this.answer(await this.loadEnvelope(loadFresh), 'db');
        } else if (set.ok && Number(set.value) !== 1) {
          // Invalidated (or the lease expired) while we loaded, or the row predates the last write.
          this.m.staleSets.labels(this.opts.name, 'l2').inc();
        } else if (set.ok) {
          return this.answer(this.setL1(key, env, payload.length, startSeq), 'db');
        }
        return this.answer(env, 'db');
      }
      // Another process holds the lease: wait for its fill.
      if (!waited) {
        waited = true;
        this.m.leaseWaits.labels(this.opts.name).inc();
      }
      await sleep(pollMs);
      pollMs = Math.min(50, Math.ceil(pollMs * 1.5));
      const polled = await this.redis.run((r) => r.get(key));
      if (!polled.ok) return this.loadBypassingRedis(key, load, startSeq);
      const env = parse<T>(polled.value);
      if (env) return this.answer(this.setL1(key, env, polled.value!.length, startSeq), 'l2');
      if (Date.now() > deadline) {
        // The holder is slow: answer from the database, fill nothing (the holder will).
        this.m.leaseTimeouts.labels(this.opts.name).inc();
        return this.answer(await this.loadEnvelope(load), 'db');
      }
      // Loop: if the holder died its lease has expired and this process takes over.
    }
  }

  private async loadBypassingRedis(key: string, load: Loader<T>, startSeq: number): Promise<CacheResult<T>> {
    const env = await this.loadEnvelope(load);
    return this.answer(this.setL1(key, env, JSON.stringify(env).length, startSeq), 'db');
  }

  private async loadEnvelope(load: Loader<T>): Promise<Envelope<T>> {
    const t0 = performance.now();
    this.m.loads.labels(this.opts.name).inc();
    const v = await load();
    const d = Math.max(0.1, performance.now() - t0);
    const { ttlMs, jitterPct, negativeTtlMs } = this.opts.l2;
    const ttl = v === null ? negativeTtlMs : Math.round(ttlMs * (1 - (jitterPct / 100) * Math.random()));
    return { v, e: Date.now() + ttl, d };
  }

  /** XFetch: refresh when now - d·β·ln(U) ≥ expiry, U uniform in (0,1]. */
  private shouldRefreshEarly(env: Envelope<T>): boolean {
    if (this.opts.xfetchBeta <= 0 || env.v === null) return false;
    return Date.now() - env.d * this.opts.xfetchBeta * Math.log(1 - Math.random()) >= env.e;
  }

  private async refreshEarly(key: string, load: Loader<T>): Promise<void> {
    if (this.refreshing.has(key)) return;
    this.refreshing.add(key);
    const startSeq = this.seq;
    try {
      const token = randomBytes(12).toString('base64url');
      const lease = await this.redis.run((r) => r.set(this.leaseKey(key), token, 'PX', this.opts.lease.ttlMs, 'NX'));
      if (!lease.ok || lease.value !== 'OK') return; // someone else is refreshing
      this.m.early.labels(this.opts.name).inc();
      const env = await this.loadEnvelope(load);
      const payload = JSON.stringify(env);
      const set = await this.setIfLease(key, token, env, payload);
      if (set.ok && Number(set.value) === 1) this.setL1(key, env, payload.length, startSeq);
      else if (set.ok) this.m.staleSets.labels(this.opts.name, 'l2').inc();
    } catch {
      /* a failed background refresh leaves the current value until its TTL */
    } finally {
      this.refreshing.delete(key);
    }
  }

  /** Returns what L1 now holds for the key (with its encoded response), or `env` itself when not stored. */
  private setL1(key: string, env: Envelope<T>, size: number, startSeq: number): Envelope<T> {
    if (!this.l1) return env;
    const inv = this.invalidatedAt.get(key);
    if ((inv !== undefined && inv > startSeq) || this.clearedAt > startSeq || this.seq - startSeq > 5_000) {
      this.m.staleSets.labels(this.opts.name, 'l1').inc();
      return env;
    }
    const remaining = env.e - Date.now();
    if (remaining <= 0) return env;
    const entry: Envelope<T> = this.opts.encode && env.v !== null ? { ...env, b: this.opts.encode(env.v) } : env;
    // While the bus cannot vouch that broadcasts arrive (silent, or not yet echoed), an entry lives at most the
    // silence bound: the L1 TTL bounds staleness only through the bus (see InvalidationBus, Liveness).
    const ttl = this.bus && !this.bus.live ? Math.min(this.opts.l1.ttlMs, this.bus.liveness.silentMs) : this.opts.l1.ttlMs;
    this.l1.set(key, entry, { ttl: Math.min(ttl, remaining), size: Math.max(1, size + key.length + (entry.b?.body.length ?? 0)) });
    return entry;
  }

  private dropLocal(key: string): void {
    this.seq++;
    this.invalidatedAt.set(key, this.seq);
    this.l1?.delete(key);
  }

  private async flushPendingDeletes(): Promise<void> {
    if (this.pendingDeletes.size === 0) return;
    const pending = [...this.pendingDeletes];
    const del = await this.redis.run((r) => {
      const tx = r.multi();
      for (const [k, version] of pending) {
        tx.del(k, this.leaseKey(k));
        if (version !== undefined) tx.set(this.minVersionKey(k), String(version), 'PX', this.opts.l2.ttlMs);
      }
      return tx.exec();
    });
    if (!del.ok) return;
    if (this.bus) {
      const pub = await this.redis.run(() => this.bus!.publish(pending.map(([k]) => k)));
      if (!pub.ok) return;
    }
    for (const [k] of pending) this.pendingDeletes.delete(k);
  }
}

function parse<T>(raw: string | null | undefined): Envelope<T> | null {
  if (!raw) return null;
  try {
    const env = JSON.parse(raw);
    return env && typeof env === 'object' && 'v' in env && typeof env.e === 'number' ? env : null;
  } catch {
    return null;
  }
}
