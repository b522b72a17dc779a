/**
 * BackgroundLoop: a job every API instance runs on a timer (the shorts enqueue and retention sweepers, the
 * stock reconciler, the partition scheduler). One definition of the parts they share: never two rounds of
 * one loop at once in a process (a slow round is not stacked on), an optional first delay (instances
 * started together should not all reach for the loop's cross-instance lock at once), timers that never keep
 * the process alive, a failed round logged and the next one still run, and stop() that waits for the round
 * in flight. Which instance does the work in a round is each loop's own lock (Redis SET NX or GET_LOCK).
 */
import type { Logger } from './logger.js';

export interface BackgroundLoopOptions {
  /** Interval between rounds; 0 or less: the loop never starts. */
  everyMs: number;
  /** Delay before the first round (default: one interval). */
  firstDelayMs?: number;
}

export class BackgroundLoop {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly round: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  start({ everyMs, firstDelayMs = everyMs }: BackgroundLoopOptions): void {
    if (everyMs <= 0 || this.timer || this.stopped) return;
    const tick = () => {
      if (this.running || this.stopped) return;
      this.running = this.round()
        .catch((err) => this.logger.error({ err, loop: this.name }, `${this.name} failed; the next round runs as scheduled`))
        .finally(() => (this.running = undefined));
    };
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, everyMs);
      this.timer.unref();
    }, firstDelayMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    await this.running;
  }
}
