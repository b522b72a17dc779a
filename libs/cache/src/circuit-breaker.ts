/**
 * CircuitBreaker: stops calling a dependency that keeps failing, so a dead Redis costs a read nothing
 * (no connect timeouts on the hot path) and the read goes straight to the database.
 *
 * closed → (N consecutive failures) → open → (cool-down elapsed) → half-open: ONE probe call is let
 * through; its success closes the breaker, its failure re-opens it for another cool-down. Trade-off: for
 * up to one cool-down after Redis returns, reads still bypass the cache (the database absorbs them).
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  onStateChange?: (state: BreakerState) => void;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private current: BreakerState = 'closed';

  constructor(private readonly opts: CircuitBreakerOptions) {}

  get state(): BreakerState {
    return this.current;
  }

  /** May a call go through now? In half-open only one caller at a time (the probe) gets true. */
  allow(now = Date.now()): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open') {
      if (now - this.openedAt < this.opts.cooldownMs) return false;
      this.set('half-open');
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(now = Date.now()): void {
    this.probing = false;
    this.failures++;
    if (this.current === 'half-open' || this.failures >= this.opts.failureThreshold) {
      this.openedAt = now;
      if (this.current !== 'open') this.set('open');
    }
  }

  private set(s: BreakerState): void {
    this.current = s;
    this.opts.onStateChange?.(s);
  }
}
