/**
 * ShortsQuotas: per-user abuse limits that every API instance shares, kept on redis-queue (noeviction:
 * a quota key must not vanish under memory pressure).
 *  - upload bytes per UTC day: one counter per user and day, raised by Upload-Length when an upload is
 *    created (checked and raised in one script, so parallel creations cannot overshoot), expiring after
 *    two days;
 *  - unfinished uploads: a sorted set per user (id -> creation ms) and one per queue ("user/id"), which
 *    the retention sweeper reads to delete uploads older than SHORTS_UPLOAD_EXPIRY_S;
 *  - open SSE streams: a sorted set per user of connection ids scored by a lease deadline that each
 *    heartbeat renews. A crashed instance cannot leak slots for ever: its leases run out.
 * Trade-off: one or two Redis round trips per upload creation and per SSE open; the daily window is a
 * calendar day (UTC), so a user can spend up to 2x the quota across midnight.
 */
import { Injectable } from '@nestjs/common';
import { RedisClients, Settings } from '#libs/core';

const ADD_BYTES = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 172800)
return used + tonumber(ARGV[1])
`;

const TAKE_SLOT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

const RESERVE = `
if redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf') >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
return 1
`;

@Injectable()
export class ShortsQuotas {
  private readonly prefix: string;

  constructor(
    private readonly config: Settings,
    private readonly redis: RedisClients,
  ) {
    this.prefix = `${config.shorts.queue}:quota`;
  }

  private get r() {
    return this.redis.queue;
  }

  /** Adds `bytes` to today's total; false (nothing added) when it would pass the daily limit. */
  async addUploadBytes(userId: string, bytes: number): Promise<{ ok: boolean; retryAfterS: number; key: string }> {
    const now = new Date();
    const key = `${this.prefix}:bytes:${userId}:${now.toISOString().slice(0, 10)}`;
    const res = Number(await this.r.eval(ADD_BYTES, 1, key, bytes, this.config.shorts.maxUploadBytesPerDay));
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    return { ok: res >= 0, retryAfterS: Math.ceil((midnight - now.getTime()) / 1000), key };
  }

  /** Gives back bytes counted by addUploadBytes (`key` from its answer) for an upload that was never created. */
  async refundUploadBytes(key: string, bytes: number): Promise<void> {
    await this.r.decrby(key, bytes);
  }

  private openKey(userId: string) {
    return `${this.prefix}:open-uploads:${userId}`;
  }

  get allOpenKey(): string {
    return `${this.prefix}:open-uploads`;
  }

  /**
   * Registers upload `id` as open unless the user already holds `max` unfinished uploads and jobs
   * (`jobs`: unfinished jobs in the database). Check and add are one script, so parallel creations of one
   * user cannot all pass the same count.
   */
  async reserveUpload(userId: string, id: string, jobs: number, max: number): Promise<boolean> {
    const now = Date.now();
    const expiryS = this.config.shorts.uploadExpiryS;
    const res = await this.r.eval(RESERVE, 2, this.openKey(userId), this.allOpenKey, expiryS > 0 ? now - expiryS * 1000 : 0, max - jobs, now, id, `${userId}/${id}`);
    return Number(res) === 1;
  }

  async openUpload(userId: string, id: string, at = Date.now()): Promise<void> {
    await this.r.multi().zadd(this.openKey(userId), at, id).zadd(this.allOpenKey, at, `${userId}/${id}`).exec();
  }

  async closeUpload(userId: string, id: string): Promise<void> {
    await this.r.multi().zrem(this.openKey(userId), id).zrem(this.allOpenKey, `${userId}/${id}`).exec();
  }

  /** Unfinished uploads of a user that have not expired yet. */
  async openUploads(userId: string): Promise<number> {
    const expiryS = this.config.shorts.uploadExpiryS;
    return this.r.zcount(this.openKey(userId), expiryS > 0 ? Date.now() - expiryS * 1000 : '-inf', '+inf');
  }

  /** Unfinished uploads created before `beforeMs`, as [userId, uploadId]. */
  async staleUploads(beforeMs: number, limit = 100): Promise<[string, string][]> {
    const members = await this.r.zrangebyscore(this.allOpenKey, '-inf', beforeMs, 'LIMIT', 0, limit);
    return members.map((m) => m.split('/') as [string, string]);
  }

  private sseKey(userId: string) {
    return `${this.prefix}:sse:${userId}`;
  }

  /** A stream's lease: three heartbeats, at least 30 s, so a slow heartbeat never drops a live stream. */
  private get sseLeaseMs(): number {
    return Math.max(30000, this.config.shorts.heartbeatMs * 3);
  }

  /** Takes one of the user's SSE slots for connection `connId`; false when all are taken. */
  async takeSseSlot(userId: string, connId: string): Promise<boolean> {
    const now = Date.now();
    const lease = this.sseLeaseMs;
    return Number(await this.r.eval(TAKE_SLOT, 1, this.sseKey(userId), now, this.config.shorts.maxSseStreamsPerUser, now + lease, connId, lease * 2)) === 1;
  }

  async renewSseSlot(userId: string, connId: string): Promise<void> {
    await this.r.multi().zadd(this.sseKey(userId), 'XX', Date.now() + this.sseLeaseMs, connId).pexpire(this.sseKey(userId), this.sseLeaseMs * 2).exec();
  }

  async releaseSseSlot(userId: string, connId: string): Promise<void> {
    await this.r.zrem(this.sseKey(userId), connId);
  }
}
