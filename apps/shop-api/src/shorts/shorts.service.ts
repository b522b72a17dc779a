/**
 * ShortsService: what happens when an upload completes (seed Q2.b: "when the upload completes, publish
 * an event to an event queue; the model server subscribes to it and downloads the file"): a job row, a
 * QUEUED event, and a BullMQ job whose id IS the job id — BullMQ ignores a second add with the same id,
 * so a repeated completion cannot enqueue twice.
 */
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { RedisClients, Settings } from '#libs/core';
import { JobProgressStream, SHORTS_JOB_NAME, shortsJobOptions, type ShortsJobData } from '#libs/shorts-jobs';
import { ShortsRepository } from './shorts.repository.js';

@Injectable()
export class ShortsService implements OnApplicationShutdown {
  readonly queue: Queue<ShortsJobData>;

  constructor(
    private readonly config: Settings,
    redis: RedisClients,
    private readonly repo: ShortsRepository,
    private readonly progress: JobProgressStream,
  ) {
    this.queue = new Queue<ShortsJobData>(config.shorts.queue, { connection: redis.queue });
    // Connection errors (redis-queue down, a Sentinel failover) reach the caller of add() and /health; without a
    // listener BullMQ prints each one with its stack.
    this.queue.on('error', () => undefined);
  }

  async createJob(input: { id: string; userId: string; fileName: string; sizeBytes: number; sourceKey: string }): Promise<void> {
    const created = await this.repo.insert({ ...input, queue: this.queue.name });
    if (created) await this.progress.append({ jobId: input.id, step: 'QUEUED', percent: 0 });
    // A crash right here leaves a QUEUED row without a queue entry: ShortsEnqueueSweeper re-adds it.
    await this.enqueue({ jobId: input.id, userId: input.userId, sourceKey: input.sourceKey });
  }

  /** Idempotent: the BullMQ job id is the job id, so adding an existing job again is a no-op. */
  async enqueue(data: ShortsJobData): Promise<void> {
    await this.queue.add(SHORTS_JOB_NAME, data, shortsJobOptions(data.jobId, this.config.shorts.attempts));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
  }
}
