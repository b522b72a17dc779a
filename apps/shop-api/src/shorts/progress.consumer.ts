/**
 * ShortsProgressConsumer: the "one consumer that collects all events and stores the progress" of seed
 * Q2.a. Every API instance joins one Redis consumer group on the shared progress feed, so each event is
 * persisted once, by whichever instance read it; entries a dead instance read but never acknowledged are
 * taken over with XAUTOCLAIM. Updates are guarded by stream order in SQL, so a redelivered or reordered
 * event is a no-op. Trade-off: persistence lags the stream by one poll; SSE reads the stream, not the DB.
 * A malformed entry (not JSON, not an event) is logged and acknowledged: retrying it could never succeed,
 * and left pending it would be claimed again and again ahead of good events. An entry whose UPDATE fails
 * (the database) stays pending and is retried via XAUTOCLAIM, without holding up the entries after it.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LOGGER, createRedis, Settings, type Logger } from '#libs/core';
import { JOB_STEPS, JobProgressStream, isStreamId, type ProgressEvent } from '#libs/shorts-jobs';

import { ShortsRepository } from './shorts.repository.js';

const GROUP = 'persist';

/** The event in a feed entry, or undefined when the entry is not one the worker could have written. */
export function parseFeedEntry(fields: string[]): { sid: string; event: ProgressEvent } | undefined {
  const get = (k: string) => {
    const i = fields.indexOf(k);
    return i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
  };
  const sid = get('sid');
  let e: any;
  try {
    e = JSON.parse(get('e') ?? '');
  } catch {
    return undefined;
  }
  const ok =
    isStreamId(sid) &&
    e !== null &&
    typeof e === 'object' &&
    typeof e.jobId === 'string' &&
    /^[0-9a-f]{32}$/.test(e.jobId) &&
    JOB_STEPS.includes(e.step) &&
    typeof e.percent === 'number' &&
    Number.isFinite(e.percent) &&
    (e.reason === undefined || typeof e.reason === 'string') &&
    (e.reasonCode === undefined || typeof e.reasonCode === 'string') &&
    (e.resultKey === undefined || typeof e.resultKey === 'string') &&
    (e.attempt === undefined || Number.isInteger(e.attempt));
  return ok ? { sid: sid!, event: e as ProgressEvent } : undefined;
}

@Injectable()
export class ShortsProgressConsumer implements OnModuleInit, OnApplicationShutdown {
  private conn?: Redis;
  private stopping = false;
  private loop?: Promise<void>;
  private readonly name = `api-${process.pid}-${randomUUID().slice(0, 8)}`;

  constructor(
    private readonly config: Settings,
    private readonly progress: JobProgressStream,
    private readonly repo: ShortsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    this.conn = createRedis(this.config.redis.queue, { maxRetriesPerRequest: null, connectionName: 'shop-api-progress-consumer' });
    this.conn.on('error', () => undefined);
    try {
      // '0': the first instance ever started also persists events produced before it existed.
      await this.conn.xgroup('CREATE', this.progress.feedKey, GROUP, '0', 'MKSTREAM');
    } catch (e) {
      if (!/BUSYGROUP/.test(String((e as Error).message))) throw e;
    }
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let lastClaim = 0;
    while (!this.stopping) {
      try {
        if (Date.now() - lastClaim > 10000) {
          lastClaim = Date.now();
          const [, claimed] = (await this.conn!.xautoclaim(this.progress.feedKey, GROUP, this.name, 30000, '0-0', 'COUNT', 100)) as [string, [string, string[]][]];
          await this.handle(claimed);
        }
        const res = (await this.conn!.xreadgroup('GROUP', GROUP, this.name, 'COUNT', 100, 'BLOCK', 1000, 'STREAMS', this.progress.feedKey, '>')) as
          | [string, [string, string[]][]][]
          | null;
        if (res) await this.handle(res[0][1]);
      } catch (err) {
        if (this.stopping) break;
        this.logger.warn({ err }, 'progress consumer error; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async handle(entries: [string, string[]][]): Promise<void> {
    for (const [feedId, fields] of entries) {
      if (!fields) continue; // deleted by MAXLEN trimming
      const parsed = parseFeedEntry(fields);
      if (!parsed) {
        this.logger.error({ feedId, fields: fields.map((f) => String(f).slice(0, 200)) }, 'malformed progress event skipped');
        await this.conn!.xack(this.progress.feedKey, GROUP, feedId);
        continue;
      }
      try {
        await this.repo.applyEvent(parsed.sid, parsed.event);
      } catch (err) {
        this.logger.warn({ err, feedId, jobId: parsed.event.jobId }, 'progress event not persisted; it stays pending and is retried');
        continue;
      }
      await this.conn!.xack(this.progress.feedKey, GROUP, feedId);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.conn?.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
