import { Module, type DynamicModule } from '@nestjs/common';
import { LOGGER, createRedis, Settings, type AppConfig, type Logger } from '#libs/core';
import { createStorage, ObjectStorage } from '#libs/storage';
import { JobProgressStream } from '#libs/shorts-jobs';
import { ShortsProcessor } from './shorts.processor.js';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig, logger: Logger): DynamicModule {
    const redis = createRedis(config.redis.queue, { connectionName: 'shorts-worker-events', maxRetriesPerRequest: 20 });
    redis.on('error', (err) => logger.warn({ err }, 'redis-queue error'));
    return {
      module: WorkerModule,
      providers: [
        { provide: Settings, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: ObjectStorage, useValue: createStorage(config.storage) },
        { provide: JobProgressStream, useValue: new JobProgressStream(redis, config.shorts.queue) },
        ShortsProcessor,
      ],
    };
  }
}
