/**
 * EdgePurger: the edge cache's (Varnish, docker/varnish/mallscale.vcl) invalidation, driven by the same
 * InvalidationBus that drops every instance's L1. For each product key on the bus it sends, to every
 * configured edge (EDGE_PURGE_URLS):
 *   PURGE /products/<id>                         the product's copy
 *   BAN /  X-Ban-Url: ^/categories/[^/]+/products   every cached list page (they embed product documents)
 * Every instance purges after it has dropped the key from its own L1, so the last purge an edge sees comes
 * after the last L1 that could still answer the old version: N instances x M edges requests per write, each
 * idempotent. When the bus subscription was lost (messages may have been missed) it bans every product
 * read. A purge that fails (edge down, timeout, refused) is counted in edge_purge_failures_total and
 * logged nowhere else: it never fails or delays the write; the edge's TTL + grace bounds what it leaves.
 */
import type { Counter } from 'prom-client';
import type { Metrics } from '#libs/core';
import type { InvalidationBus } from './invalidation-bus.js';

export interface EdgePurgerOptions {
  /** Edge base URLs (http://127.0.0.1:6081). */
  urls: string[];
  timeoutMs: number;
  /** The full cache key of product <id> is productKeyPrefix + id (ProductCache.products.key('')). */
  productKeyPrefix: string;
}

const LIST_PAGES = '^/categories/[^/]+/products';
const ALL_PRODUCT_READS = '^/(products|categories)/';

export class EdgePurger {
  private readonly sent: Counter<'method'>;
  private readonly failed: Counter<'method'>;
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    bus: InvalidationBus,
    private readonly opts: EdgePurgerOptions,
    metrics: Metrics,
  ) {
    this.sent = metrics.counter('edge_purge_requests_total', 'PURGE/BAN requests to the edge cache after product writes, counted when done', ['method']);
    this.failed = metrics.counter('edge_purge_failures_total', 'PURGE/BAN requests the edge did not confirm (down, timeout, refused); the write went on', ['method']);
    bus.onInvalidate((key) => {
      if (!key.startsWith(opts.productKeyPrefix)) return;
      const id = key.slice(opts.productKeyPrefix.length);
      if (/^[1-9][0-9]{0,18}$/.test(id)) this.track(this.purgeProduct(id));
    });
    bus.onResync(() => this.track(this.ban(ALL_PRODUCT_READS)));
  }

  /** PURGE the product and BAN the list pages on every edge; resolves when all answered or failed. */
  async purgeProduct(id: string): Promise<void> {
    await Promise.all([...this.opts.urls.map((u) => this.send(u, 'PURGE', `/products/${id}`)), this.ban(LIST_PAGES)]);
  }

  private async ban(regex: string): Promise<void> {
    await Promise.all(this.opts.urls.map((u) => this.send(u, 'BAN', '/', { 'x-ban-url': regex })));
  }

  /** Counted once it is over (answered, refused or timed out): a rise of the counter means the edge is done with it. */
  private async send(base: string, method: 'PURGE' | 'BAN', path: string, headers: Record<string, string> = {}): Promise<void> {
    try {
      const res = await fetch(`${base}${path}`, { method, headers, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      await res.arrayBuffer();
      if (res.status !== 200) this.failed.labels(method).inc();
    } catch {
      this.failed.labels(method).inc();
    } finally {
      this.sent.labels(method).inc();
    }
  }

  private track(p: Promise<void>): void {
    if (this.closed) return;
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Lets the purges in flight finish (each is bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
  }
}
