import { Module } from '@nestjs/common';
import { RedisClients, Settings } from '#libs/core';
import { createStorage, ObjectStorage } from '#libs/storage';
import { JobProgressStream } from '#libs/shorts-jobs';
import { ShortsController } from './shorts.controller.js';
import { ShortsRepository } from './shorts.repository.js';
import { ShortsService } from './shorts.service.js';
import { TusUploadMount } from './tus-upload.mount.js';
import { ProgressHub } from './progress.hub.js';
import { ShortsProgressConsumer } from './progress.consumer.js';
import { ShortsEnqueueSweeper } from './enqueue.sweeper.js';
import { ShortsQuotas } from './quotas.js';
import { ShortsRetentionSweeper } from './retention.sweeper.js';

@Module({
  controllers: [ShortsController],
  providers: [
    { provide: ObjectStorage, inject: [Settings], useFactory: (c: Settings) => createStorage(c.storage) },
    { provide: JobProgressStream, inject: [Settings, RedisClients], useFactory: (c: Settings, r: RedisClients) => new JobProgressStream(r.queue, c.shorts.queue) },
    ShortsRepository,
    ShortsService,
    TusUploadMount,
    ProgressHub,
    ShortsProgressConsumer,
    ShortsEnqueueSweeper,
    ShortsQuotas,
    ShortsRetentionSweeper,
  ],
  exports: [ShortsService, JobProgressStream, ObjectStorage],
})
export class ShortsModule {}
