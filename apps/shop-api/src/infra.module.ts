/**
 * Infrastructure shared by every feature module: the validated config, the database node pools,
 * the two Redis clients, metrics and the logger. Everything opened here is closed on shutdown.
 */
import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DbNodes, GaleraMonitor, GaleraRouter, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { LOGGER, DefaultRedisClients, Metrics, RedisClients, Settings, type AppConfig, type Logger } from '#libs/core';

@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    private readonly db: DbNodes,
    @Inject(RedisClients) private readonly redis: DefaultRedisClients,
    private readonly replicaMonitor: ReplicaMonitor,
  ) {}

  static forRoot(config: AppConfig, logger: Logger, metrics: Metrics): DynamicModule {
    return {
      module: InfraModule,
      providers: [
        { provide: Settings, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: Metrics, useValue: metrics },
        { provide: DbNodes, useFactory: () => DbNodes.connect(config.db) },
        { provide: RedisClients, useFactory: () => new DefaultRedisClients(config.redis.cache, config.redis.queue) },
        // Replica routing (docs/q3-replication.md): the monitor checks replicas every ~500 ms from start-up.
        // DB_CATALOG_MODE=galera: the same two roles for a Galera cluster (libs/db/src/galera.ts).
        {
          provide: ReplicaMonitor,
          inject: [DbNodes],
          useFactory: async (db: DbNodes) => {
            const r = config.replication;
            const Monitor = config.db.catalog === 'galera' ? GaleraMonitor : ReplicaMonitor;
            const monitor = new Monitor(db, { intervalMs: r.monitorIntervalMs, maxLagMs: r.maxLagMs, logger, metrics });
            await monitor.start();
            return monitor;
          },
        },
        {
          provide: ReplicaRouter,
          inject: [DbNodes, ReplicaMonitor],
          useFactory: (db: DbNodes, monitor: ReplicaMonitor) =>
            new (config.db.catalog === 'galera' ? GaleraRouter : ReplicaRouter)(db, monitor, { waitMs: config.replication.waitMs, fallback: config.replication.fallback, metrics, logger }),
        },
      ],
      exports: [Settings, LOGGER, Metrics, DbNodes, RedisClients, ReplicaMonitor, ReplicaRouter],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.replicaMonitor.stop();
    await Promise.all([this.db.close(), this.redis.close()]);
  }
}
