// DelayProxy: a TCP "WAN link" for the multi-region lab (kernel netem is not available here).
// Every byte that crosses a region boundary goes through one of these: it is held for `delayMs` in each
// direction (so a round trip costs 2 × delay, like netem on both hosts' egress), in order, with bounded
// buffers: when more than `maxQueuedBytes` wait in one direction the sending socket is paused, so a fast
// sender feels backpressure exactly as it would from a full TCP window on a long fat pipe.
// A link can be cut (a network partition): nothing is forwarded and new connections hang unanswered,
// as with dropped packets; bytes are held (not lost, TCP would retransmit them), and flow on heal().
// Trade-off: the delay is per chunk in user space, so it adds ~1 ms of timer jitter and no bandwidth
// limit or packet loss model; enough to show what a commit waits for, not to model a lossy WAN.
import fs from 'node:fs';
import net from 'node:net';

const END = Symbol('end');

/**
 * One direction of one connection: bytes read from `from` are written to `to` no earlier than
 * `delayMs` after they were read, in order.
 */
class DelayedPipe {
  constructor(link, from, to) {
    this.link = link;
    this.from = from;
    this.to = to;
    this.queue = []; // [{ due, data: Buffer | END }]
    this.queued = 0;
    this.timer = null;
    this.waitingDrain = false;
    from.on('data', (data) => this.push(data));
    from.on('end', () => this.push(END));
    to.on('drain', () => { this.waitingDrain = false; this.flush(); });
  }

  push(data) {
    this.queue.push({ due: Date.now() + this.link.delayMs, data });
    if (data !== END) {
      this.queued += data.length;
      this.link.stats.bytes += data.length;
      if (this.queued > this.link.maxQueuedBytes) this.from.pause(); // bounded: backpressure to the sender
    }
    this.schedule();
  }

  schedule() {
    if (this.timer || this.waitingDrain || this.link.isCut || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0].due - Date.now());
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, wait);
  }

  flush() {
    if (this.link.isCut) return;
    const now = Date.now();
    while (this.queue.length && this.queue[0].due <= now && !this.waitingDrain) {
      const { due, data } = this.queue.shift();
      this.link.stats.maxEarlyMs = Math.max(this.link.stats.maxEarlyMs, due - now); // > 0 would be a bug
      if (data === END) { this.to.end(); continue; }
      this.queued -= data.length;
      if (!this.to.write(data)) this.waitingDrain = true;
    }
    if (this.queued <= this.link.maxQueuedBytes / 2 && this.from.isPaused() && !this.link.isCut) this.from.resume();
    this.schedule();
  }

  clear() { clearTimeout(this.timer); this.timer = null; }
}

/** A listening endpoint that forwards every accepted connection to `target` through two DelayedPipes. */
export class DelayProxy {
  /**
   * Listens on a TCP port (`listenPort`, 0 = any) or a unix socket (`listenPath`) and forwards to a TCP
   * port (`targetPort`) or a unix socket (`targetPath`). Unix sockets let a link end inside another
   * network namespace (the Galera nodes run in their own, see galera-netns.mjs).
   * @param {{ name?: string, listenPort?: number, listenPath?: string, targetPort?: number, targetPath?: string, delayMs: number, maxQueuedBytes?: number }} o
   */
  constructor({ name = 'link', listenPort, listenPath, targetPort, targetPath, delayMs, maxQueuedBytes = 4 * 1024 * 1024 }) {
    Object.assign(this, { name, listenPort, listenPath, targetPort, targetPath, delayMs, maxQueuedBytes });
    this.host = '127.0.0.1';
    this.isCut = false;
    this.conns = new Set(); // { client, upstream, pipes }
    this.held = []; // sockets accepted while cut: connected once healed
    this.stats = { connections: 0, bytes: 0, maxEarlyMs: 0 };
    this.server = net.createServer({ pauseOnConnect: true }, (client) => this.accept(client));
    this.server.on('error', () => {});
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        if (!this.listenPath) this.listenPort = this.server.address().port; // listenPort 0 = any free port (tests)
        resolve(this);
      };
      if (this.listenPath) { fs.rmSync(this.listenPath, { force: true }); this.server.listen(this.listenPath, done); }
      else this.server.listen(this.listenPort, this.host, done);
    });
  }

  accept(client) {
    this.stats.connections++;
    client.on('error', () => {});
    if (this.isCut) { this.held.push(client); client.on('close', () => { this.held = this.held.filter((c) => c !== client); }); return; }
    const upstream = this.targetPath ? net.connect({ path: this.targetPath }) : net.connect({ host: this.host, port: this.targetPort });
    if (!this.targetPath) upstream.setNoDelay(true);
    if (!this.listenPath) client.setNoDelay(true);
    const entry = { client, upstream, pipes: [new DelayedPipe(this, client, upstream), new DelayedPipe(this, upstream, client)] };
    this.conns.add(entry);
    const close = () => {
      if (!this.conns.delete(entry)) return;
      for (const p of entry.pipes) p.clear();
      // Let what is already in flight arrive first (a FIN travels the same delayed path).
      setTimeout(() => { client.destroy(); upstream.destroy(); }, this.delayMs);
    };
    upstream.on('error', close).on('close', close);
    client.on('close', close);
    client.resume();
  }

  /** Partition: stop forwarding in both directions on every connection, and hold new ones. */
  cut() {
    this.isCut = true;
    for (const { client, upstream, pipes } of this.conns) {
      client.pause();
      upstream.pause();
      for (const p of pipes) p.clear();
    }
  }

  /** End the partition: held bytes flow (after their delay), held connections are connected. */
  heal() {
    if (!this.isCut) return;
    this.isCut = false;
    for (const { pipes } of this.conns) {
      for (const p of pipes) {
        if (p.queued <= this.maxQueuedBytes) p.from.resume();
        p.flush();
      }
    }
    const held = this.held;
    this.held = [];
    for (const c of held) if (!c.destroyed) this.accept(c);
  }

  close() {
    for (const { client, upstream, pipes } of this.conns) { for (const p of pipes) p.clear(); client.destroy(); upstream.destroy(); }
    for (const c of this.held) c.destroy();
    this.conns.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * The WAN between regions: one DelayProxy per (from region, to region, service).
 * `endpoint(from, to, service)` is the port a client in `from` dials to reach `service` in `to`.
 */
export class Wan {
  constructor({ delayMs, maxQueuedBytes } = {}) {
    this.delayMs = delayMs;
    this.maxQueuedBytes = maxQueuedBytes;
    this.links = [];
  }

  /** A link from region `from` to `service` in region `to` (listen/target: see DelayProxy). */
  async add({ from, to, service, ...ends }) {
    const link = new DelayProxy({ name: `${from}->${to}:${service}`, ...ends, delayMs: this.delayMs, maxQueuedBytes: this.maxQueuedBytes });
    Object.assign(link, { from, to, service });
    await link.listen();
    this.links.push(link);
    return link;
  }

  endpoint(from, to, service) {
    const l = this.links.find((x) => x.from === from && x.to === to && x.service === service);
    if (!l) throw new Error(`no WAN link ${from}->${to} for ${service}`);
    return l.listenPort;
  }

  /** Cut every link into and out of `region`. */
  isolate(region) { for (const l of this.links) if (l.from === region || l.to === region) l.cut(); }
  healAll() { for (const l of this.links) l.heal(); }
  /** Change the one-way delay of every link (applies to bytes read from now on). */
  setDelay(ms) { this.delayMs = ms; for (const l of this.links) l.delayMs = ms; }
  stats() { return this.links.map((l) => ({ link: l.name, ...l.stats })); }
  async close() { await Promise.all(this.links.map((l) => l.close())); this.links = []; }
}
