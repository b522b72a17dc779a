/**
 * The edge tier's purge (issue 17): with EDGE_PURGE_URLS set, one EdgePurger per API process listens on the
 * product cache's invalidation bus and purges the written products from the edge (Varnish). Off by default.
 */
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Metrics, Settings } from '#libs/core';
import { EdgePurger } from '#libs/cache';
import { CatalogCache } from './product-cache.provider.js';

@Injectable()
export class EdgePurgerLifecycle implements OnModuleInit, OnApplicationShutdown {
  private purger: EdgePurger | null = null;
  constructor(
    private readonly settings: Settings,
    private readonly cache: CatalogCache,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    const { purgeUrls, purgeTimeoutMs } = this.settings.edge;
    // Config refuses EDGE_PURGE_URLS without CACHE_MODE=l1l2: the bus exists in that mode only.
    if (!purgeUrls.length || !this.cache.bus) return;
    this.purger = new EdgePurger(this.cache.bus, { urls: purgeUrls, timeoutMs: purgeTimeoutMs, productKeyPrefix: this.cache.products.key('') }, this.metrics);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.purger?.close();
  }
}
