/**
 * ShortsEnqueueSweeper: closes the gap between "job row written" and "job added to the queue". If an API
 * instance dies between the two (ShortsService.createJob), the row stays QUEUED and no worker will ever
 * see it. Every SHORTS_SWEEP_INTERVAL_MS one instance (the one that wins a Redis lock, SET NX PX for one
 * interval, so no coordination and no leader election) looks for QUEUED rows of its queue older than
 * SHORTS_SWEEP_AFTER_S and re-adds those whose BullMQ job does not exist. The BullMQ job id is the job id,
 * so a race with a late original add, or with another sweeper, still leaves one queue entry.
 * Trade-off: a lost enqueue is repaired after up to SHORTS_SWEEP_AFTER_S + one interval, not at once; the
 * scan is one indexed query per interval on the primary.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Metrics, RedisClients, Settings, type Logger } from '#libs/core';
import { LOGGER } from '../infra.module.js';
import { ShortsRepository } from './shorts.repository.js';
import { ShortsService } from './shorts.service.js';

export interface SweepResult {
  /** false: another instance holds this interval's lock. */
  ran: boolean;
  requeued: string[];
}

@Injectable()
export class ShortsEnqueueSweeper implements OnModuleInit, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly token = randomUUID();
  readonly lockKey: string;

  constructor(
    private readonly config: Settings,
    private readonly redis: RedisClients,
    private readonly repo: ShortsRepository,
    private readonly shorts: ShortsService,
    private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.lockKey = `${config.shorts.queue}:sweeper:lock`;
  }

  onModuleInit(): void {
    const every = this.config.shorts.sweepIntervalMs;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.sweepOnce()
        .catch((err) => this.logger.warn({ err }, 'enqueue sweep failed'))
        .finally(() => (this.running = undefined));
    }, every);
    this.timer.unref();
  }

  /** One round: take the interval's lock or do nothing; re-add QUEUED jobs whose queue entry is missing. */
  async sweepOnce(): Promise<SweepResult> {
    const lockMs = Math.max(1000, this.config.shorts.sweepIntervalMs);
    const got = await this.redis.queue.set(this.lockKey, this.token, 'PX', lockMs, 'NX');
    if (got !== 'OK') return { ran: false, requeued: [] };
    const requeued: string[] = [];
    for (const row of await this.repo.findStaleQueued(this.config.shorts.queue, this.config.shorts.sweepAfterS)) {
      if (await this.shorts.queue.getJob(row.id)) continue;
      await this.shorts.enqueue({ jobId: row.id, userId: String(row.user_id), sourceKey: row.source_key });
      requeued.push(row.id);
    }
    if (requeued.length) {
      this.metrics.counter('shorts_sweeper_requeued_total', 'QUEUED shorts jobs re-added to the queue by the sweeper').inc(requeued.length);
      this.logger.warn({ jobs: requeued }, 're-enqueued shorts jobs whose queue entry was missing');
    }
    return { ran: true, requeued };
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
