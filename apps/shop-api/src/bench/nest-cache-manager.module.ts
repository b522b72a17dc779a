/**
 * BENCHMARK ONLY — the peer baseline of docs/q1-hot-products.md, never part of the production path:
 * loaded only with BENCH_PEER_CACHE=nest-cache-manager (refused under NODE_ENV=production), and its npm
 * packages are devDependencies (the image's `npm ci --omit=dev` does not even contain them).
 *
 * What a NestJS user reaches for first, as @nestjs/cache-manager's docs show it: CacheModule with a Keyv
 * store on Redis (@keyv/redis on redis-cache) and the CacheInterceptor, bound globally (APP_INTERCEPTOR),
 * narrowed with the documented `trackBy` override to the route under test, GET /products/:id. The hot-products
 * benchmark runs it with CACHE_MODE=off, so our ProductCache is not involved: one Redis tier, no request
 * coalescing, no lease, no invalidation on write (a PATCH leaves the old copy until its TTL).
 */
import { Injectable, type DynamicModule, type ExecutionContext } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { CacheInterceptor, CacheModule } from '@nestjs/cache-manager';
import { createKeyv } from '@keyv/redis';
import type { AppConfig } from '#libs/core';

@Injectable()
export class ProductReadCacheInterceptor extends CacheInterceptor {
  protected override trackBy(context: ExecutionContext) {
    const req = context.switchToHttp().getRequest<{ method: string; url: string }>();
    return req.method === 'GET' && /^\/products\/[1-9][0-9]{0,18}$/.test(req.url) ? super.trackBy(context) : undefined;
  }
}

export class NestCacheManagerPeerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: NestCacheManagerPeerModule,
      imports: [
        // The same TTL as our L2, a namespace per cache prefix (every benchmark mode starts cold).
        CacheModule.register({ ttl: config.cache.l2TtlMs, stores: [createKeyv(config.redis.cacheUrl, { namespace: `${config.cache.prefix}nest-cm` })] }),
      ],
      providers: [{ provide: APP_INTERCEPTOR, useClass: ProductReadCacheInterceptor }],
    };
  }
}
