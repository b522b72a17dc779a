/**
 * RedisLocker: the tus locker shared by every API instance. A lock is a key on redis-queue (SET NX PX,
 * renewed while held, released only by its owner token). A request that wants a held lock PUBLISHes a
 * release request: the holder (on whatever instance) gets it through its subscriber and ends its
 * request — the tus way of recovering from a client that reconnects while its old PATCH is half-open.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils';

const TTL_MS = 30000;
const ACQUIRE_TIMEOUT_MS = 5000;
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

export class RedisLocker implements Locker {
  private readonly holders = new Map<string, RequestRelease>();
  private subscribed?: Promise<unknown>;

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    this.subscriber.on('message', (_channel: string, id: string) => {
      const release = this.holders.get(id);
      if (release) void release();
    });
  }

  get channel(): string {
    return `${this.prefix}:tus-lock:release`;
  }

  ensureSubscribed(): Promise<unknown> {
    return (this.subscribed ??= this.subscriber.subscribe(this.channel));
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id);
  }

  /** @internal */ async acquire(id: string, token: string, signal: AbortSignal, release: RequestRelease): Promise<() => Promise<void>> {
    await this.ensureSubscribed();
    const key = `${this.prefix}:tus-lock:${id}`;
    const until = Date.now() + ACQUIRE_TIMEOUT_MS;
    for (;;) {
      if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
      if ((await this.redis.set(key, token, 'PX', TTL_MS, 'NX')) === 'OK') break;
      await this.redis.publish(this.channel, id);
      if (Date.now() > until) throw ERRORS.ERR_LOCK_TIMEOUT;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.holders.set(id, release);
    const renew = setInterval(() => void this.redis.eval(RENEW, 1, key, token, TTL_MS).catch(() => undefined), TTL_MS / 3);
    renew.unref();
    return async () => {
      clearInterval(renew);
      if (this.holders.get(id) === release) this.holders.delete(id);
      await this.redis.eval(UNLOCK, 1, key, token);
    };
  }
}

class RedisLock implements Lock {
  private readonly token = randomBytes(12).toString('hex');
  private releaseFn?: () => Promise<void>;

  constructor(
    private readonly locker: RedisLocker,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    this.releaseFn = await this.locker.acquire(this.id, this.token, signal, requestRelease);
  }

  async unlock(): Promise<void> {
    await this.releaseFn?.();
    this.releaseFn = undefined;
  }
}
