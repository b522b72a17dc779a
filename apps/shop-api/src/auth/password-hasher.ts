/**
 * PasswordHasher: argon2id behind a bounded queue. argon2 is slow on purpose and runs on libuv's small
 * shared thread pool (4 threads by default), which file and DNS work also need; a sign-in flood would
 * otherwise queue without bound there and stall every route. At most AUTH_HASH_CONCURRENCY hashes run
 * and AUTH_HASH_QUEUE_MAX wait; the next one is answered 503 + Retry-After at once, costing nothing.
 */
import { Injectable } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';
import PQueue from 'p-queue';
import { ApiError, Settings } from '#libs/core';

// A hash to verify against when the e-mail is unknown, so sign-in takes the same time either way.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0RxpM0mJwd9xPZ3YOuTeyD9eqNfMCv2zQ2Y+iF1ZjJg';
const RETRY_AFTER_S = 1;

@Injectable()
export class PasswordHasher {
  private readonly queue: PQueue;
  private readonly maxWaiting: number;

  constructor(config: Settings) {
    this.queue = new PQueue({ concurrency: config.auth.hashConcurrency });
    this.maxWaiting = config.auth.hashQueueMax;
  }

  /** Running and waiting work, for tests and metrics. */
  get state(): { running: number; waiting: number } {
    return { running: this.queue.pending, waiting: this.queue.size };
  }

  /** Runs `work` in a slot, or refuses with 503 when every slot is taken and the queue is full. */
  run<T>(work: () => Promise<T>): Promise<T> {
    if (this.queue.pending >= this.queue.concurrency && this.queue.size >= this.maxWaiting) {
      const busy = new ApiError(503, 'busy', 'the server is busy checking passwords: retry in a moment');
      busy.headers = { 'retry-after': String(RETRY_AFTER_S) };
      throw busy;
    }
    return this.queue.add(work);
  }

  hash(password: string): Promise<string> {
    return this.run(() => hash(password));
  }

  /** Verifies against the stored hash, or against a dummy one when there is none (same cost). */
  verify(storedHash: string | undefined, password: string): Promise<boolean> {
    return this.run(() => verify(storedHash ?? DUMMY_HASH, password).catch(() => false)).then((ok) => ok && storedHash !== undefined);
  }
}
