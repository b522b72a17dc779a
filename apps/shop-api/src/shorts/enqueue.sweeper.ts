/**
 * ShortsEnqueueSweeper: closes the gap between "job row written" and "job added to the queue". If an API
 * instance dies between the two (ShortsService.createJob), the row stays QUEUED and no worker will ever
 * see it. Every SHORTS_SWEEP_INTERVAL_MS one instance (the one that wins a Redis lock, SET NX PX for one
 * interval, so no coordination and no leader election) looks for QUEUED rows of its queue older than
 * SHORTS_SWEEP_AFTER_S and re-adds those whose BullMQ job does not exist. The BullMQ job id is the job id,
 * so a race with a late original add, or with another sweeper, still leaves one queue entry.
 * Trade-off: a lost enqueue is repaired after up to SHORTS_SWEEP_AFTER_S + one interval, not at once; the
 * scan is one indexed query per interval on the primary.
 * The other end of the same gap: a job BullMQ itself gave up on without any worker saying so — its
 * stalled checker fails a job that stalled more than maxStalledCount times (workers that died mid-job),
 * and the job row would stay GENERATING for ever. Rows in flight and untouched for SHORTS_SWEEP_AFTER_S
 * whose BullMQ job is failed (or gone) and whose stream has no terminal event get a FAILED event
 * ('worker_lost'): the consumer persists it and their SSE streams end, like any other failure.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LOGGER, BackgroundLoop, Metrics, RedisClients, Settings, type Logger } from '#libs/core';
import { JobProgressStream, TERMINAL_STEPS } from '#libs/shorts-jobs';

import { ShortsRepository } from './shorts.repository.js';
import { ShortsService } from './shorts.service.js';

export interface SweepResult {
  /** false: another instance holds this interval's lock. */
  ran: boolean;
  requeued: string[];
  /** In-flight jobs BullMQ had failed or lost, now FAILED (present only when not empty). */
  failed?: string[];
}

export const WORKER_LOST_REASON = 'processing stopped unexpectedly';

@Injectable()
export class ShortsEnqueueSweeper implements OnModuleInit, OnApplicationShutdown {
  private readonly loop: BackgroundLoop;
  private readonly token = randomUUID();
  readonly lockKey: string;

  constructor(
    private readonly config: Settings,
    private readonly redis: RedisClients,
    private readonly repo: ShortsRepository,
    private readonly shorts: ShortsService,
    private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly progress: JobProgressStream,
  ) {
    this.lockKey = `${config.shorts.queue}:sweeper:lock`;
    this.loop = new BackgroundLoop('shorts enqueue sweep', () => this.sweepOnce(), logger);
  }

  onModuleInit(): void {
    this.loop.start({ everyMs: this.config.shorts.sweepIntervalMs });
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
    const failed = await this.failLost();
    return { ran: true, requeued, ...(failed.length ? { failed } : {}) };
  }

  private async failLost(): Promise<string[]> {
    const failed: string[] = [];
    for (const row of await this.repo.findStaleInFlight(this.config.shorts.queue, this.config.shorts.sweepAfterS)) {
      const job = await this.shorts.queue.getJob(row.id);
      const state = job ? await job.getState() : 'missing';
      if (state !== 'failed' && state !== 'missing' && state !== 'unknown') continue;
      const last = await this.progress.last(row.id);
      if (last && TERMINAL_STEPS.includes(last.event.step)) continue; // the worker said it; not persisted yet
      await this.progress.append({ jobId: row.id, step: 'FAILED', percent: 100, reason: WORKER_LOST_REASON, reasonCode: 'worker_lost' });
      this.logger.warn({ jobId: row.id, state, failedReason: job?.failedReason }, 'shorts job lost by its workers: marked FAILED');
      failed.push(row.id);
    }
    return failed;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }

}
