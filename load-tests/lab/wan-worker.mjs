// Runs the lab's WAN (all DelayProxy links) on a worker thread, so the load generators' event loop
// and the proxies' delay timers do not queue behind each other.
import { parentPort, workerData, Worker } from 'node:worker_threads';
import { Wan } from './delay-proxy.mjs';

if (parentPort && workerData?.wanWorker) {
  const wan = new Wan(workerData.options);
  parentPort.on('message', async ({ id, op, args }) => {
    try {
      let result;
      if (op === 'add') result = (await wan.add(args)).listenPort;
      else if (op === 'isolate') wan.isolate(args.region);
      else if (op === 'heal') wan.healAll();
      else if (op === 'setDelay') wan.setDelay(args.ms);
      else if (op === 'stats') result = wan.stats();
      else if (op === 'close') await wan.close();
      parentPort.postMessage({ id, result });
    } catch (e) {
      parentPort.postMessage({ id, error: e.message });
    }
  });
}

/** Same surface as Wan (add/isolate/healAll/stats/close + endpoint), backed by a worker thread. */
export class WanHost {
  constructor(options) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { wanWorker: true, options } });
    this.worker.unref();
    this.seq = 0;
    this.pending = new Map();
    this.links = [];
    this.worker.on('message', ({ id, result, error }) => {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (error) p.reject(new Error(error)); else p.resolve(result);
    });
    this.worker.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
  }

  call(op, args = {}) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => { this.pending.set(id, { resolve, reject }); this.worker.postMessage({ id, op, args }); });
  }

  async add(spec) {
    const listenPort = await this.call('add', spec);
    this.links.push({ ...spec, listenPort });
    return listenPort;
  }

  endpoint(from, to, service) {
    const l = this.links.find((x) => x.from === from && x.to === to && x.service === service);
    if (!l) throw new Error(`no WAN link ${from}->${to} for ${service}`);
    return l.listenPort;
  }

  isolate(region) { return this.call('isolate', { region }); }
  healAll() { return this.call('heal'); }
  setDelay(ms) { return this.call('setDelay', { ms }); }
  stats() { return this.call('stats'); }
  async close() {
    try { await this.call('close'); } finally { await this.worker.terminate(); }
  }
}
