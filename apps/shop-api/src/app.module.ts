import { Module, type DynamicModule } from '@nestjs/common';
import type { AppConfig, Logger, Metrics } from '#libs/core';
import { InfraModule } from './infra.module.js';
import { HealthModule } from './health/health.module.js';
import { AuthModule } from './auth/auth.module.js';
import { UsersModule } from './users/users.module.js';
import { AdminModule } from './admin/admin.module.js';
import { WebModule } from './web/web.module.js';
import { CatalogModule } from './catalog/catalog.module.js';
import { ShortsModule } from './shorts/shorts.module.js';
import { ConsistencyModule } from './http/consistency.module.js';
import { OrdersModule } from './orders/orders.module.js';
import { ConsoleModule } from './console/console.module.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: Logger, metrics: Metrics): DynamicModule {
    return {
      module: AppModule,
      imports: [
        InfraModule.forRoot(config, logger, metrics),
        AuthModule,
        HealthModule,
        ConsistencyModule,
        CatalogModule,
        ShortsModule,
        OrdersModule,
        UsersModule,
        AdminModule,
        WebModule,
        ConsoleModule.forRoot(config),
        // BENCHMARK ONLY (hot-products mode nest_cache_manager): the peer baseline, loaded on demand.
        ...(config.benchPeerCache === 'nest-cache-manager' ? [import('./bench/nest-cache-manager.module.js').then((m) => m.NestCacheManagerPeerModule.forRoot(config))] : []),
      ],
    };
  }
}
