/**
 * The two Redis roles of the topology, never mixed: `cache` evicts (allkeys-lru) and may lose anything;
 * `queue` never evicts (BullMQ, progress streams, locks). RESP2 is pinned: ioredis 6 defaults to RESP3,
 * whose push messages (client-side-caching invalidations) it drops, and nothing here needs RESP3.
 */
import { Redis, type RedisOptions } from 'ioredis';

export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    protocol: 2,
    lazyConnect: false,
    enableOfflineQueue: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...opts,
  } as RedisOptions);
}

export abstract class RedisClients {
  abstract readonly cache: Redis;
  abstract readonly queue: Redis;
}

export class DefaultRedisClients extends RedisClients {
  readonly cache: Redis;
  readonly queue: Redis;
  constructor(cacheUrl: string, queueUrl: string) {
    super();
    this.cache = createRedis(cacheUrl, { connectionName: 'mallscale-cache' });
    this.queue = createRedis(queueUrl, { connectionName: 'mallscale-queue' });
    // Errors are reported through /health; an unhandled 'error' event would crash the process.
    this.cache.on('error', () => undefined);
    this.queue.on('error', () => undefined);
  }
  async close(): Promise<void> {
    await Promise.all([this.cache.quit().catch(() => this.cache.disconnect()), this.queue.quit().catch(() => this.queue.disconnect())]);
  }
}
