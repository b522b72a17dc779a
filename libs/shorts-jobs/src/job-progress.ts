/**
 * JobProgressStream: the event queue of seed Q2.a. Each pipeline step appends one event to a Redis
 * stream per job (its entry ids are the SSE ids, so a browser resumes with Last-Event-ID) and, in the
 * same atomic script, to one shared stream that a single consumer group persists to the catalog DB
 * (the source of truth for My page), then PUBLISHes a wake-up for the SSE tails of every API instance.
 * Trade-off: two writes per event instead of one, in exchange for cheap per-job replay and one ordered
 * feed for the persister; streams are capped (MAXLEN ~) and a finished job's stream expires after 7 days.
 */
import type { Redis } from 'ioredis';

export const JOB_STEPS = ['QUEUED', 'DOWNLOADING', 'GENERATING', 'STORING', 'DONE', 'FAILED', 'RETRYING'] as const;
export type JobStep = (typeof JOB_STEPS)[number];
export const TERMINAL_STEPS: readonly JobStep[] = ['DONE', 'FAILED'];

export interface ProgressEvent {
  jobId: string;
  step: JobStep;
  /** Overall progress 0..100. */
  percent: number;
  /** A sentence a user can read (FAILED, RETRYING): fixed text, never a path or a tool's output. */
  reason?: string;
  /** FAILED: a stable code (FailureCode) clients can branch on. */
  reasonCode?: string;
  resultKey?: string;
  attempt?: number;
  worker?: string;
  /** Epoch ms when the event was produced (for delivery-latency measurements). */
  at: number;
}

export interface StoredProgressEvent {
  /** The per-job stream id: the SSE id. */
  id: string;
  event: ProgressEvent;
}

const APPEND = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', '1000', '*', 'e', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'job', ARGV[1], 'sid', id, 'e', ARGV[2])
if ARGV[3] == '1' then redis.call('EXPIRE', KEYS[1], 604800) end
redis.call('PUBLISH', KEYS[3], ARGV[1])
return id
`;

/** Stream ids compare as (ms, seq); this fixed-width form compares the same way as a string (SQL too). */
export function sortableStreamId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms.padStart(15, '0')}-${(seq ?? '0').padStart(6, '0')}`;
}

export function isStreamId(v: unknown): v is string {
  return typeof v === 'string' && /^\d{1,15}-\d{1,6}$/.test(v);
}

export class JobProgressStream {
  readonly feedKey: string;
  readonly notifyChannel: string;

  /** prefix: the queue name, so a test (or a tenant) with its own queue owns its streams too. */
  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.feedKey = `${prefix}:progress`;
    this.notifyChannel = `${prefix}:progress:notify`;
  }

  jobKey(jobId: string): string {
    return `${this.prefix}:events:${jobId}`;
  }

  async append(event: Omit<ProgressEvent, 'at'> & { at?: number }): Promise<string> {
    const e: ProgressEvent = { ...event, at: event.at ?? Date.now() };
    const terminal = TERMINAL_STEPS.includes(e.step) ? '1' : '0';
    return (await this.redis.eval(APPEND, 3, this.jobKey(e.jobId), this.feedKey, this.notifyChannel, e.jobId, JSON.stringify(e), terminal)) as string;
  }

  /** The job's latest event, if its stream exists. */
  async last(jobId: string): Promise<StoredProgressEvent | undefined> {
    const [row] = (await this.redis.xrevrange(this.jobKey(jobId), '+', '-', 'COUNT', 1)) as [string, string[]][];
    return row ? { id: row[0], event: JSON.parse(row[1][row[1].indexOf('e') + 1]) as ProgressEvent } : undefined;
  }

  /** Events after `afterId` (exclusive), oldest first. */
  async after(jobId: string, afterId?: string, count = 1000): Promise<StoredProgressEvent[]> {
    const rows = (await this.redis.xrange(this.jobKey(jobId), afterId ? `(${afterId}` : '-', '+', 'COUNT', count)) as [string, string[]][];
    return rows.map(([id, fields]) => ({ id, event: JSON.parse(fields[fields.indexOf('e') + 1]) as ProgressEvent }));
  }
}
