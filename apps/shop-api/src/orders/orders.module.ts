import { Module } from '@nestjs/common';
import { DbNodes, OrderShardRouter } from '#libs/db';
import { CatalogModule } from '../catalog/catalog.module.js';
import { OrdersController } from './orders.controller.js';
import { OrdersRepository } from './orders.repository.js';
import { OrdersService } from './orders.service.js';
import { PartitionScheduler } from './partition.scheduler.js';
import { IdempotencyStore } from './idempotency-store.js';
import { StockReconciler } from './stock-reconciler.js';
import { StockReservation } from './stock-reservation.js';

@Module({
  imports: [CatalogModule], // the product cache, invalidated when an order changes stock
  controllers: [OrdersController],
  providers: [
    // Physical shards come from config (DB_SHARD_URLS); the bucket map from the catalog primary, cached 5 s.
    { provide: OrderShardRouter, inject: [DbNodes], useFactory: (db: DbNodes) => new OrderShardRouter(() => db.primary.ds, db.shards.length) },
    OrdersRepository,
    IdempotencyStore,
    OrdersService,
    StockReservation,
    StockReconciler,
    PartitionScheduler,
  ],
  exports: [OrderShardRouter, OrdersService, PartitionScheduler, StockReconciler],
})
export class OrdersModule {}
