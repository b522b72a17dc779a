/**
 * InvalidationBus: every API instance keeps its own L1, so a write must reach all of them. The writer
 * publishes the invalidated keys on a Redis pub/sub channel; every subscriber (the writer included) drops
 * them from L1.
 *
 * Pub/sub is fire-and-forget: a subscriber that is disconnected when a message is sent never sees it.
 * So when the subscriber connection comes back after a loss, the instance drops its WHOLE L1 (`onResync`):
 * a burst of misses instead of serving stale entries.
 *
 * Liveness (the heartbeat): a connection can also die without a 'close' (a half-open TCP connection, a
 * paused or stuck reader), and while Redis is down no write's broadcast arrives at all. So every
 * `heartbeatMs` the bus publishes to a channel of its own, read on the SAME subscriber connection: its echo
 * proves that everything published before it reached this instance (Redis runs commands one at a time and
 * writes a subscriber's messages in order). A beat not echoed within `silentMs` → the bus is silent: L1 is cleared
 * (`onResync`) and `live` is false (CacheAside then keeps L1 entries at most `silentMs`) until the next echo
 * (also the state before the first one). A broadcast lost in any way is thus bounded by silentMs + 2 × heartbeatMs,
 * not by the L1 TTL, which may then be long. Each instance echoes to itself only: no N² fan-out.
 * Alternative: CLIENT TRACKING with REDIRECT to a RESP2 connection (ioredis 6 drops RESP3 pushes).
 */
import type { Redis } from 'ioredis';
import type { Histogram, Counter } from 'prom-client';
import type { Metrics } from '#libs/core';

export interface InvalidationMessage {
  /** Full cache keys (namespace included). */
  k: string[];
  /** Sender instance id. */
  src: string;
  /** Sender clock (ms since epoch) when published: receivers observe the fan-out delay. */
  t: number;
}

export class InvalidationBus {
  private readonly handlers: Array<(key: string) => void> = [];
  private readonly resyncHandlers: Array<() => void> = [];
  private readonly sent: Counter<'channel'>;
  private readonly received: Counter<'channel'>;
  private readonly resyncs: Counter<'channel'>;
  private readonly delay: Histogram<'channel'>;
  private readonly silences: Counter<'channel'>;
  private lostConnection = false;
  private started = false;
  /** The own heartbeat channel (see Liveness above). */
  private readonly echoChannel: string;
  /** When the oldest heartbeat not yet echoed was due (null: every beat so far came back). */
  private pendingSince: number | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  /** An echo came back within silentMs: every broadcast published until then has reached this instance. */
  live = false;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    readonly channel: string,
    readonly instanceId: string,
    metrics: Metrics,
    readonly liveness: { heartbeatMs: number; silentMs: number } = { heartbeatMs: 1000, silentMs: 3000 },
  ) {
    this.echoChannel = `${channel}:echo:${instanceId}`;
    this.silences = metrics.counter('cache_bus_silences_total', 'Heartbeats that did not come back within CACHE_BUS_SILENT_MS (L1 cleared, short-lived until the next echo)', ['channel']);
    this.sent = metrics.counter('cache_invalidations_sent_total', 'Invalidation messages published to the other instances', ['channel']);
    this.received = metrics.counter('cache_invalidations_received_total', 'Invalidation messages received from other instances', ['channel']);
    this.resyncs = metrics.counter('cache_l1_resyncs_total', 'Subscriber reconnects after which L1 was cleared (messages may have been missed)', ['channel']);
    this.delay = metrics.histogram(
      'cache_invalidation_delay_seconds',
      'Publish-to-receive delay of L1 invalidation broadcasts (sender clock vs receiver clock)',
      ['channel'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    );
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.subscriber.on('message', (channel: string, raw: string) => this.onMessage(channel, raw));
    this.subscriber.on('close', () => {
      this.lostConnection = true;
    });
    this.subscriber.on('ready', () => {
      if (!this.lostConnection) return;
      this.lostConnection = false;
      this.resyncs.labels(this.channel).inc();
      for (const h of this.resyncHandlers) h();
    });
    // Not awaited to completion when Redis is down at start: ioredis re-subscribes once connected.
    await Promise.race([this.subscriber.subscribe(this.channel, this.echoChannel).catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), this.liveness.heartbeatMs);
    this.heartbeat.unref();
  }

  /**
   * Publishes the next echo and checks the oldest unanswered one. Silence is a beat not echoed within silentMs,
   * counted from when the beat was due (a beat that could not even be sent counts too): a process whose event
   * loop was blocked has sent nothing meanwhile, so it does not take its own stall for a dead connection.
   */
  private beat(): void {
    this.pendingSince ??= performance.now();
    if (this.publisher.status === 'ready') void this.publisher.publish(this.echoChannel, String(Date.now())).catch(() => undefined);
    // After the poll phase (setImmediate): an echo already in the socket is read before the check.
    setImmediate(() => {
      if (!this.live || this.pendingSince === null || performance.now() - this.pendingSince <= this.liveness.silentMs) return;
      this.live = false;
      this.silences.labels(this.channel).inc();
      for (const h of this.resyncHandlers) h();
    });
  }

  onInvalidate(fn: (key: string) => void): void {
    this.handlers.push(fn);
  }

  /** Called when the subscription was lost and is back: messages may have been missed. */
  onResync(fn: () => void): void {
    this.resyncHandlers.push(fn);
  }

  async publish(keys: string[]): Promise<void> {
    const msg: InvalidationMessage = { k: keys, src: this.instanceId, t: Date.now() };
    await this.publisher.publish(this.channel, JSON.stringify(msg));
    this.sent.labels(this.channel).inc();
  }

  /** Receive-side: drop the keys from L1. Exposed for the delay measurement in tests. */
  lastDelayMs: number | null = null;

  private onMessage(channel: string, raw: string): void {
    if (channel === this.echoChannel) {
      // Entries filled while the bus was not live expire within silentMs of their fill: nothing to clear here.
      this.pendingSince = null;
      this.live = true;
      return;
    }
    if (channel !== this.channel) return;
    let msg: InvalidationMessage;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!Array.isArray(msg.k)) return;
    for (const key of msg.k) for (const h of this.handlers) h(key);
    if (msg.src !== this.instanceId) {
      this.received.labels(this.channel).inc();
      this.lastDelayMs = Math.max(0, Date.now() - Number(msg.t));
      this.delay.labels(this.channel).observe(this.lastDelayMs / 1000);
    }
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.live = false;
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
