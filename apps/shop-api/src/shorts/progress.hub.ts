/**
 * ProgressHub: one Redis subscriber per API instance for the "new event on job X" wake-ups that
 * JobProgressStream publishes. SSE connections register per job; the events themselves are always read
 * from the job's stream from the connection's own cursor, so a lost wake-up delays an event until the
 * next heartbeat but can never skip or duplicate one.
 */
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedis, Settings } from '#libs/core';
import { JobProgressStream } from '#libs/shorts-model';

type Listener = () => void;

@Injectable()
export class ProgressHub implements OnModuleInit, OnApplicationShutdown {
  private sub?: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly config: Settings,
    private readonly progress: JobProgressStream,
  ) {}

  async onModuleInit(): Promise<void> {
    this.sub = createRedis(this.config.redis.queueUrl, { connectionName: 'shop-api-progress-hub' });
    this.sub.on('error', () => undefined);
    this.sub.on('message', (_c: string, jobId: string) => this.listeners.get(jobId)?.forEach((l) => l()));
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

  get connections(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.quit().catch(() => this.sub?.disconnect());
  }
}
