/**
 * Infrastructure shared by every feature module: the validated config, the database node pools,
 * the two Redis clients, metrics and the logger. Everything opened here is closed on shutdown.
 */
import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DbNodes } from '#libs/db';
import { DefaultRedisClients, Metrics, RedisClients, Settings, type AppConfig, type Logger } from '#libs/core';

export const LOGGER = Symbol('LOGGER');

@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    private readonly db: DbNodes,
    @Inject(RedisClients) private readonly redis: DefaultRedisClients,
  ) {}

  static forRoot(config: AppConfig, logger: Logger, metrics: Metrics): DynamicModule {
    return {
      module: InfraModule,
      providers: [
        { provide: Settings, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: Metrics, useValue: metrics },
        { provide: DbNodes, useFactory: () => DbNodes.connect(config.db) },
        { provide: RedisClients, useFactory: () => new DefaultRedisClients(config.redis.cacheUrl, config.redis.queueUrl) },
      ],
      exports: [Settings, LOGGER, Metrics, DbNodes, RedisClients],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.db.close(), this.redis.close()]);
  }
}
