/**
 * Wires libs/cache ProductCache into Nest: one per API process, on the redis-cache node, with its own
 * subscriber connection for the invalidation bus (l1l2 mode only). Started on module init, closed on
 * shutdown. CACHE_MODE=off|l2|l1l2 picks the tiers (the benchmark compares them).
 */
import type { FactoryProvider, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { createRedis, Metrics, RedisClients, Settings } from '#libs/core';
import { ProductCache } from '#libs/cache';
import type { Product } from './products.repository.js';

export abstract class CatalogCache extends ProductCache<Product> {}

export const catalogCacheProvider: FactoryProvider = {
  provide: CatalogCache,
  inject: [Settings, RedisClients, Metrics],
  useFactory: (settings: Settings, redis: RedisClients, metrics: Metrics) => {
    let subscriber = null;
    if (settings.cache.mode === 'l1l2') {
      subscriber = createRedis(settings.redis.cache, { connectionName: 'mallscale-cache-invalidations', maxRetriesPerRequest: null });
      subscriber.on('error', () => undefined); // reported by /health and the breaker; never crash
    }
    return new ProductCache<Product>(settings.cache, redis.cache, subscriber, metrics);
  },
};

@Injectable()
export class CatalogCacheLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(private readonly cache: CatalogCache) {}
  async onModuleInit(): Promise<void> {
    await this.cache.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.cache.close();
  }
}
