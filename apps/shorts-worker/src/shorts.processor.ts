/**
 * ShortsProcessor: consumes the `shorts` queue on redis-queue. Until the shorts pipeline lands this
 * processor only acknowledges jobs; the worker's lifecycle (connect, concurrency, graceful close) is real.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import { createRedis, Settings, type Logger } from '#libs/core';

export const LOGGER = Symbol('LOGGER');
export const SHORTS_QUEUE = 'shorts';

@Injectable()
export class ShortsProcessor implements OnModuleInit, OnApplicationShutdown {
  private worker?: Worker;

  constructor(
    private readonly config: Settings,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    // BullMQ needs maxRetriesPerRequest: null on worker connections (blocking commands must not time out).
    const connection = createRedis(this.config.redis.queueUrl, { maxRetriesPerRequest: null, connectionName: 'shorts-worker' });
    this.worker = new Worker(SHORTS_QUEUE, (job) => this.process(job), { connection, concurrency: 1, autorun: true });
    this.worker.on('error', (err) => this.logger.error({ err }, 'worker error'));
  }

  async process(job: Job): Promise<{ acknowledged: true }> {
    this.logger.info({ jobId: job.id }, 'received shorts job');
    return { acknowledged: true };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
