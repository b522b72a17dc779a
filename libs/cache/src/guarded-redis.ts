/**
 * GuardedRedis: every cache call to Redis goes through a circuit breaker and a short timeout, and a
 * failure is an answer ("no cache"), never an exception. Redis is an optimisation for reads: when it is
 * down or slow, the read goes to the database (counted as a bypass) and the API keeps answering 200.
 */
import type { Redis } from 'ioredis';
import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '#libs/core';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';

export type RedisAnswer<R> = { ok: true; value: R } | { ok: false };

const STATES: BreakerState[] = ['closed', 'half-open', 'open'];

export class GuardedRedis {
  readonly breaker: CircuitBreaker;
  private readonly bypass: Counter<'reason'>;
  private readonly state: Gauge<'state'>;

  constructor(
    readonly redis: Redis,
    metrics: Metrics,
    private readonly opts: { timeoutMs: number; failureThreshold: number; cooldownMs: number },
  ) {
    this.bypass = metrics.counter('cache_redis_bypass_total', 'Cache operations that skipped Redis (breaker open, not connected, error or timeout)', ['reason']);
    this.state = metrics.gauge('cache_redis_breaker_state', 'Circuit breaker in front of redis-cache (1 = current state)', ['state']);
    const show = (s: BreakerState) => STATES.forEach((x) => this.state.labels(x).set(x === s ? 1 : 0));
    show('closed');
    this.breaker = new CircuitBreaker({ failureThreshold: opts.failureThreshold, cooldownMs: opts.cooldownMs, onStateChange: show });
  }

  async run<R>(op: (r: Redis) => Promise<R>): Promise<RedisAnswer<R>> {
    if (!this.breaker.allow()) {
      this.bypass.labels('breaker_open').inc();
      return { ok: false };
    }
    if (this.redis.status !== 'ready') {
      // Do not queue behind a reconnecting client: that is exactly the latency the breaker avoids.
      this.breaker.failure();
      this.bypass.labels('not_connected').inc();
      return { ok: false };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        op(this.redis),
        new Promise<never>((_, reject) => {
          // Timers run BEFORE the poll phase: on a starved event loop the timeout would fire while the
          // reply already sits in the socket. setImmediate runs after the poll phase, so a reply that has
          // arrived wins; only a Redis that really did not answer in time counts as a failure.
          timer = setTimeout(() => setImmediate(() => reject(new Error('timeout'))), this.opts.timeoutMs);
        }),
      ]);
      this.breaker.success();
      return { ok: true, value };
    } catch (e) {
      this.breaker.failure();
      this.bypass.labels((e as Error).message === 'timeout' ? 'timeout' : 'error').inc();
      return { ok: false };
    } finally {
      clearTimeout(timer);
    }
  }
}
