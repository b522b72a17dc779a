/**
 * The built-in bounded load: `connections` loops of GET requests against this API for `ms`, paths drawn
 * from Zipf(s) over a list of product ids (rank 1 = the hottest). Client-side latencies give req/s and p99.
 */
import { request as httpRequest, Agent } from 'node:http';

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p99Ms: number;
  p50Ms: number;
  xCache: Record<string, number>;
}

/** Sampler of ranks 0..n-1 with P(rank k) ∝ 1/(k+1)^s (inverse CDF, binary search). */
export function zipf(n: number, s = 1, random: () => number = Math.random): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** One GET on a keep-alive agent; resolves to the status and X-Cache header. */
export function get(agent: Agent, base: URL, path: string, headers: Record<string, string> = {}): Promise<{ status: number; xCache: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: base.hostname, port: base.port, path, method: 'GET', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, xCache: String(res.headers['x-cache'] ?? '') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** One request with a JSON body on a keep-alive agent; resolves to the status. */
export function send(agent: Agent, base: URL, r: { method: string; path: string; headers?: Record<string, string>; body?: unknown }): Promise<{ status: number }> {
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  return new Promise((resolve, reject) => {
    const headers = { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...r.headers };
    const req = httpRequest({ host: base.hostname, port: base.port, path: r.path, method: r.method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** GETs every path once, `connections` in flight (a cache pre-warm). */
export async function getEach(opts: { baseUrl: string; paths: string[]; connections: number; signal: AbortSignal }): Promise<void> {
  const base = new URL(opts.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  let next = 0;
  const loop = async () => {
    while (next < opts.paths.length && !opts.signal.aborted) await get(agent, base, opts.paths[next++]).catch(() => undefined);
  };
  try {
    await Promise.all(Array.from({ length: opts.connections }, loop));
  } finally {
    agent.destroy();
  }
}

export async function runLoad(opts: { baseUrl: string; paths: () => string; connections: number; ms: number; signal: AbortSignal }): Promise<LoadResult> {
  const base = new URL(opts.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const lat: number[] = [];
  const xCache: Record<string, number> = {};
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + opts.ms;
  const loop = async () => {
    while (performance.now() < end && !opts.signal.aborted) {
      const s = performance.now();
      try {
        const r = await get(agent, base, opts.paths());
        if (r.status !== 200) errors++;
        xCache[r.xCache || '-'] = (xCache[r.xCache || '-'] ?? 0) + 1;
      } catch {
        errors++;
      }
      lat.push(performance.now() - s);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.connections }, loop));
  } finally {
    agent.destroy();
  }
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return { requests: lat.length, errors, rps: r1(lat.length / wall), p99Ms: r1(quantile(lat, 0.99)), p50Ms: r1(quantile(lat, 0.5)), xCache };
}
