/**
 * ShortsRetentionSweeper: storage does not grow for ever. Every SHORTS_RETENTION_INTERVAL_MS one instance
 * (the one that wins a Redis lock, as ShortsEnqueueSweeper does) deletes
 *  - unfinished uploads older than SHORTS_UPLOAD_EXPIRY_S (tus already answers 410 for them),
 *  - the source of every job that ended (DONE/FAILED) more than SHORTS_SOURCE_RETENTION_DAYS ago,
 *  - the result archive of every DONE job older than SHORTS_RESULT_RETENTION_DAYS.
 * The job row stays (My page still lists it) and records what was deleted; a retention of 0 days keeps
 * forever. Each round handles at most 100 objects of each kind, so a backlog drains over a few rounds.
 * Trade-off: "ended" is the row's updated_at; a DONE job's source goes after 7 days even if a retry of
 * the same input might have wanted it — the user uploads again.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LOGGER, BackgroundLoop, Metrics, RedisClients, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';

import { ShortsQuotas } from './quotas.js';
import { ShortsRepository } from './shorts.repository.js';
import { shortsKeys } from '#libs/shorts-jobs';

export interface RetentionResult {
  ran: boolean;
  uploads: string[];
  sources: string[];
  results: string[];
}

@Injectable()
export class ShortsRetentionSweeper implements OnModuleInit, OnApplicationShutdown {
  private readonly loop: BackgroundLoop;
  private readonly token = randomUUID();
  readonly lockKey: string;

  constructor(
    private readonly config: Settings,
    private readonly redis: RedisClients,
    private readonly repo: ShortsRepository,
    private readonly storage: ObjectStorage,
    private readonly quotas: ShortsQuotas,
    private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.lockKey = `${config.shorts.queue}:retention:lock`;
    this.loop = new BackgroundLoop('shorts retention sweep', () => this.sweepOnce(), logger);
  }

  onModuleInit(): void {
    this.loop.start({ everyMs: this.config.shorts.retentionIntervalMs });
  }

  async sweepOnce(): Promise<RetentionResult> {
    const s = this.config.shorts;
    const out: RetentionResult = { ran: false, uploads: [], sources: [], results: [] };
    const got = await this.redis.queue.set(this.lockKey, this.token, 'PX', Math.max(60000, s.retentionIntervalMs), 'NX');
    if (got !== 'OK') return out;
    out.ran = true;
    try {
      if (s.uploadExpiryS > 0) {
        for (const [userId, id] of await this.quotas.staleUploads(Date.now() - s.uploadExpiryS * 1000)) {
          // Completed meanwhile (its completion did not reach closeUpload): it is a job's source now.
          if (!(await this.storage.head(shortsKeys.source(id)))) {
            await this.storage.deletePrefix(shortsKeys.uploadPrefix(id));
            out.uploads.push(id);
          }
          await this.quotas.closeUpload(userId, id);
        }
      }
      if (s.sourceRetentionDays > 0) {
        for (const row of await this.repo.findExpired(s.queue, 'source', s.sourceRetentionDays)) {
          await this.storage.deletePrefix(shortsKeys.uploadPrefix(row.id));
          await this.repo.markExpired(row.id, 'source');
          out.sources.push(row.id);
        }
      }
      if (s.resultRetentionDays > 0) {
        for (const row of await this.repo.findExpired(s.queue, 'result', s.resultRetentionDays)) {
          if (row.result_key) await this.storage.delete(row.result_key);
          await this.repo.markExpired(row.id, 'result');
          out.results.push(row.id);
        }
      }
    } finally {
      const n = out.uploads.length + out.sources.length + out.results.length;
      if (n) {
        this.metrics.counter('shorts_retention_deleted_total', 'expired uploads, sources and results deleted by the retention sweeper').inc(n);
        this.logger.info({ uploads: out.uploads.length, sources: out.sources.length, results: out.results.length }, 'retention sweep deleted expired objects');
      }
    }
    return out;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }
}
