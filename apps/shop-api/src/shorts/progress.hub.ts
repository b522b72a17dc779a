/**
 * ProgressHub: one Redis subscriber per API instance for the "new event on job X" wake-ups that
 * JobProgressStream publishes. SSE connections register per job; the events themselves are always read
 * from the job's stream from the connection's own cursor, so a lost wake-up delays an event until the
 * next heartbeat but can never skip or duplicate one.
 * Fan-out: a wake-up calls every listener of the job in the same tick, and reads with the same (job,
 * cursor) share one XRANGE (`after`), so N browsers following one job cost one Redis read per event, not N.
 * A read is shared only within one wake-up generation: a read issued before wake-up N may miss event N,
 * so a listener woken by N never joins it (it would wait for the next event to see N).
 * `follow` is the SSE state machine (replay after a cursor, then tail, end after DONE/FAILED, heartbeats
 * that also re-read the stream): the controller only frames what it yields.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedis, LOGGER, Settings, type Logger } from '#libs/core';
import { JobProgressStream, TERMINAL_STEPS, type ProgressEvent, type StoredProgressEvent } from '#libs/shorts-jobs';

type Listener = () => void;

/** What a follower sees: an event of the job's stream, the DB's final state of an expired stream, or a beat. */
export type FollowItem = { kind: 'event'; event: StoredProgressEvent } | { kind: 'final'; event: ProgressEvent } | { kind: 'heartbeat' };

export interface FollowOptions {
  /** Resume after this stream id (Last-Event-ID); from the start when absent. */
  cursor?: string;
  /** The job's final state from the DB, for a finished job whose stream has expired (7 days after its end). */
  finalState?: ProgressEvent;
  heartbeatMs: number;
  /** Ends the follow (the client went away). */
  signal: AbortSignal;
}

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
    @Inject(LOGGER) private readonly logger: Logger,
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

  /**
   * Replay after `cursor`, then tail: yields each event once, in stream order, and returns after the
   * terminal one (or the final state of an expired stream). Reads happen on a wake-up and on every
   * heartbeat, so a lost wake-up costs latency, never an event; a failed read is retried at the next beat.
   */
  async *follow(jobId: string, opts: FollowOptions): AsyncGenerator<FollowItem> {
    let cursor = opts.cursor;
    let pending = true;
    let wake: (() => void) | undefined;
    const unlisten = this.listen(jobId, () => {
      pending = true;
      wake?.();
    });
    const aborted = () => wake?.();
    opts.signal.addEventListener('abort', aborted);
    try {
      while (!opts.signal.aborted) {
        if (pending) {
          pending = false;
          let events: StoredProgressEvent[] = [];
          try {
            events = await this.after(jobId, cursor);
          } catch (err) {
            this.logger.warn({ err, jobId }, 'progress read failed; retried at the next heartbeat');
          }
          if (events.length === 0 && cursor === undefined && opts.finalState) {
            yield { kind: 'final', event: opts.finalState };
            return;
          }
          for (const event of events) {
            yield { kind: 'event', event };
            cursor = event.id;
            if (TERMINAL_STEPS.includes(event.event.step)) return;
          }
          continue;
        }
        let timer: NodeJS.Timeout | undefined;
        const beat = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false);
          timer = setTimeout(() => resolve(true), opts.heartbeatMs);
        });
        wake = undefined;
        clearTimeout(timer);
        if (beat && !opts.signal.aborted) {
          pending = true;
          yield { kind: 'heartbeat' };
        }
      }
    } finally {
      opts.signal.removeEventListener('abort', aborted);
      unlisten();
    }
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
