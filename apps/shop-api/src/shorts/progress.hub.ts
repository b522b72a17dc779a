/**
 * ProgressHub: one Redis subscriber per API instance for the "new event on job X" wake-ups that
 * JobProgressStream publishes. SSE connections register per job; the events themselves are always read
 * from the job's stream from the connection's own cursor, so a lost wake-up delays an event until the
 * next heartbeat but can never skip or duplicate one.
 * Fan-out: a wake-up calls every listener of the job in the same tick, and reads with the same (job,
 * cursor) share one XRANGE (`after`), so N browsers following one job cost one Redis read per event, not N.
 * A read is shared only within one wake-up generation: a read issued before wake-up N may miss event N,
 * so a listener woken by N never joins it (it would wait for the next event to see N).
 */
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedis, Settings } from '#libs/core';
import { JobProgressStream, type StoredProgressEvent } from '#libs/shorts-model';

type Listener = () => void;

@Injectable()
export class ProgressHub implements OnModuleInit, OnApplicationShutdown {
  private sub?: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly reads = new Map<string, Promise<StoredProgressEvent[]>>();
  /** Wake-ups received so far (any job): reads are shared within one value only. */
  private generation = 0;

  constructor(
    private readonly config: Settings,
    private readonly progress: JobProgressStream,
  ) {}

  async onModuleInit(): Promise<void> {
    this.sub = createRedis(this.config.redis.queue, { connectionName: 'shop-api-progress-hub' });
    this.sub.on('error', () => undefined);
    this.sub.on('message', (_c: string, jobId: string) => {
      const set = this.listeners.get(jobId);
      if (!set) return;
      this.generation++;
      set.forEach((l) => l());
    });
    await this.sub.subscribe(this.progress.notifyChannel);
  }

  listen(jobId: string, l: Listener): () => void {
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(l);
    return () => {
      set.delete(l);
      if (set.size === 0) this.listeners.delete(jobId);
    };
  }

  /** The job's events after `cursor`; concurrent calls with the same job and cursor share one read. */
  after(jobId: string, cursor: string | undefined): Promise<StoredProgressEvent[]> {
    const key = `${jobId}|${cursor ?? ''}|${this.generation}`;
    let read = this.reads.get(key);
    if (!read) {
      read = this.progress.after(jobId, cursor).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return read;
  }

  get connections(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.quit().catch(() => this.sub?.disconnect());
  }
}
