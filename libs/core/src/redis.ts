/**
 * The one place Redis connections are built. Two roles, never mixed: `cache` evicts (allkeys-lru) and may
 * lose anything; `queue` never evicts (BullMQ, progress streams, locks). RESP2 is pinned: ioredis 6 defaults
 * to RESP3, whose push messages (client-side-caching invalidations) it drops, and nothing here needs RESP3.
 *
 * A role is reached either by its URL or, when its sentinels are configured (REDIS_<ROLE>_SENTINELS), through
 * Redis Sentinel: on every (re)connect ioredis asks the sentinels for the current master of the named group and
 * checks with ROLE that the server it reached is a master (a demoted one is refused and the sentinels asked
 * again). A client learns of a failover when its connection drops (the old primary died, or was demoted:
 * Sentinel sends CLIENT KILL TYPE normal to every instance it reconfigures) or when a write answers READONLY
 * (reconnect, resend). ioredis's failoverDetector (+switch-master subscriptions) stays off: its announcement
 * can land while the client is between reconnect attempts, and ioredis then ends the client for good
 * (SentinelConnector.connect throws "Connection is closed.", the client's status becomes end): in one of
 * five runs of the redis-failover benchmark with it on, neither client recovered. The URL gives only
 * password, db number and TLS.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisEndpoint } from './config.js';

/** ioredis options for an endpoint: direct (host/port from the URL) or Sentinel-discovered. */
function endpointOptions(target: RedisEndpoint): RedisOptions {
  if (!target.sentinels.length) return {};
  const u = new URL(target.url);
  const db = Number(u.pathname.slice(1) || 0);
  return {
    sentinels: target.sentinels,
    name: target.masterName,
    role: 'master',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    // A write that reaches a demoted master (connected before the demotion): reconnect through the sentinels, resend.
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
    retryStrategy: (times: number) => Math.min(times * 100, target.reconnectMaxMs),
    // While no sentinel answers (all restarting), retry at most every second rather than giving up.
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1000),
  } as RedisOptions;
}

export function createRedis(target: string | RedisEndpoint, opts: RedisOptions = {}): Redis {
  const base = {
    protocol: 2,
    lazyConnect: false,
    enableOfflineQueue: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  } as RedisOptions;
  if (typeof target === 'string') return new Redis(target, { ...base, ...opts } as RedisOptions);
  if (!target.sentinels.length) return new Redis(target.url, { ...base, ...opts } as RedisOptions);
  return new Redis({ ...base, ...endpointOptions(target), ...opts } as RedisOptions);
}

/** Where a client is connected now (after a failover: the promoted replica), or null while it is not. */
export function connectedTo(client: Redis): { host: string; port: number } | null {
  const s = (client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
  return client.status === 'ready' && s?.remoteAddress && s.remotePort ? { host: s.remoteAddress, port: s.remotePort } : null;
}

export abstract class RedisClients {
  abstract readonly cache: Redis;
  abstract readonly queue: Redis;
}

export class DefaultRedisClients extends RedisClients {
  readonly cache: Redis;
  readonly queue: Redis;
  constructor(cache: string | RedisEndpoint, queue: string | RedisEndpoint) {
    super();
    this.cache = createRedis(cache, { connectionName: 'mallscale-cache' });
    this.queue = createRedis(queue, { connectionName: 'mallscale-queue' });
    // Errors are reported through /health; an unhandled 'error' event would crash the process.
    this.cache.on('error', () => undefined);
    this.queue.on('error', () => undefined);
  }
  async close(): Promise<void> {
    await Promise.all([this.cache.quit().catch(() => this.cache.disconnect()), this.queue.quit().catch(() => this.queue.disconnect())]);
  }
}
