import { Module } from '@nestjs/common';
import { Settings } from '#libs/core';
import { DbNodes, OrderShardRouter } from '#libs/db';
import { CatalogModule } from '../catalog/catalog.module.js';
import { OrdersController } from './orders.controller.js';
import { OrdersRepository } from './orders.repository.js';
import { OrdersService } from './orders.service.js';
import { PartitionScheduler } from './partition.scheduler.js';
import { IdempotencyStore } from './idempotency-store.js';
import { StockReconciler } from './stock-reconciler.js';

@Module({
  imports: [CatalogModule], // StockReservation: the catalog's owner of products.stock
  controllers: [OrdersController],
  providers: [
    // Physical shards come from config (DB_SHARD_URLS); the bucket map from the catalog primary, cached
    // SHARD_MAP_TTL_MS (5 s) and reloaded at once when a shard's bucket fence refuses a stale route.
    {
      provide: OrderShardRouter,
      inject: [DbNodes, Settings],
      useFactory: (db: DbNodes, config: Settings) => new OrderShardRouter(() => db.primary.ds, db.shards.length, config.resharding.mapTtlMs),
    },
    OrdersRepository,
    IdempotencyStore,
    OrdersService,
    StockReconciler,
    PartitionScheduler,
  ],
  exports: [OrderShardRouter, OrdersService, PartitionScheduler, StockReconciler],
})
export class OrdersModule {}
