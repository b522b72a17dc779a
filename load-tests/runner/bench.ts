/**
 * `npm run bench -- <scenario> [--duration 10s] [--warmup 3s] [--connections N] [--modes a,b]`
 *
 * Runs every mode of a scenario in one run, each against a freshly started target process (a mode may
 * start shop-api with different settings, or cap the database nodes' CPU through the native stack),
 * with a warm-up that is not measured. Prints a markdown table and writes
 * load-tests/results/<scenario>.json: {scenario, startedAt, machine, modes:{rps,p50_ms,p99_ms,errors}, ratios}.
 * The load generator (autocannon) runs in this process; the target runs in its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { repoRoot } from '#libs/core';

export interface ModeDef {
  target: 'bare' | 'api';
  env?: Record<string, string>;
  /** Cap every database node of the native stack to this share of one core for this mode (0.1 = 10%). */
  dbCpu?: number | null;
  /** Only cap these native-stack nodes (e.g. ['shard-0','shard-1']); the other database nodes run uncapped. Default: all. */
  dbCpuNodes?: string[];
  /** Number of shop-api processes behind a round-robin (default 1). */
  instances?: number;
}

export interface Scenario {
  name: string;
  description: string;
  duration?: string;
  warmup?: string;
  connections?: number;
  modes: Record<string, ModeDef>;
  /** name: [a, b] = a's req/s over b's; [a, b, 'p99_ms'] = a's p99 over b's (a latency ratio: lower is better). */
  ratios?: Record<string, [string, string] | [string, string, 'rps' | 'p99_ms']>;
  setup?: (ctx: BenchContext) => Promise<unknown>;
  /** Called before each mode (after its target is up): e.g. to empty a cache. */
  beforeMode?: (ctx: BenchContext, mode: string, data: unknown) => Promise<void>;
  /** Around the measured run only (not the warm-up): `after` returns extra numbers for the mode's row (e.g. a server-side query rate). */
  beforeMeasure?: (ctx: BenchContext, mode: string, data: unknown) => Promise<unknown>;
  afterMeasure?: (ctx: BenchContext, mode: string, data: unknown, state: unknown, durationS: number, result: ModeResult) => Promise<Record<string, number> | void>;
  /** A measurement that is not an HTTP load (e.g. database experiments): returns its own modes/ratios/tables. */
  run?: (ctx: BenchContext, opts: Record<string, string>) => Promise<{ modes?: Record<string, ModeResult>; ratios: Record<string, number>; tables?: string[]; details?: unknown }>;
  request: (rand: () => number, data: any, mode: string) => { method?: string; path: string; headers?: Record<string, string>; body?: unknown };
}

export interface BenchContext {
  root: string;
  baseUrl?: string;
  log: (msg: string) => void;
  /** Dynamic import from the runner (scenarios stay import-free so k6 can read them), e.g. ctx.load('mysql2/promise'). */
  load: (specifier: string) => Promise<any>;
  /** `run` scenarios only: start a target process with a mode's settings (e.g. shop-api with its env); stop() ends it. */
  startTarget?: (mode: ModeDef) => Promise<{ url: string; stop: () => Promise<void> }>;
}

export interface ModeResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
  /** Scenario-specific numbers from afterMeasure. */
  extra?: Record<string, number>;
}

function seconds(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration '${s}' (use e.g. 10s, 500ms, 1m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseArgs(argv: string[]) {
  const [name, ...rest] = argv;
  const opts: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(rest[i]);
    if (!m) throw new Error(`unexpected argument '${rest[i]}'`);
    opts[m[1]] = m[2] ?? rest[++i];
  }
  return { name, opts };
}

async function waitHttp(url: string, timeoutMs = 60000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A free port from the kernel (port 0), unless BENCH_PORT_BASE asks for a fixed range.
let nextPort = process.env.BENCH_PORT_BASE ? Number(process.env.BENCH_PORT_BASE) : 0;
async function freePort(): Promise<number> {
  if (nextPort) return nextPort++;
  const { createServer } = await import('node:net');
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}
export async function startTarget(root: string, mode: ModeDef, index = 0): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const entry = mode.target === 'bare' ? join(root, 'load-tests/runner/bare-server.mjs') : join(root, 'dist/apps/shop-api/src/main.js');
  const proc = spawn(process.execPath, [entry], {
    cwd: root,
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: process.env.NODE_ENV || 'development', INSTANCE: String(index), ...mode.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(mode.target === 'bare' ? url : `${url}/health/live`);
  return { url, proc };
}

async function stopTarget(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
  await done;
  clearTimeout(t);
}

async function fire(scenario: Scenario, mode: string, urls: string[], data: unknown, connections: number, durationS: number, seed: number): Promise<ModeResult> {
  const rand = mulberry32(seed);
  let rr = 0;
  const instances = urls.map((url) =>
    autocannon({
      url,
      connections: Math.max(1, Math.round(connections / urls.length)),
      duration: durationS,
      requests: [
        {
          setupRequest: (req: any) => {
            const r = scenario.request(rand, data, mode);
            rr++;
            const body = r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
            return {
              ...req,
              method: r.method ?? 'GET',
              path: r.path,
              headers: { ...(body && typeof r.body !== 'string' ? { 'content-type': 'application/json' } : {}), ...r.headers },
              body,
            };
          },
        },
      ],
    } as any),
  );
  const results: any[] = await Promise.all(instances);
  const rps = results.reduce((s, r) => s + r.requests.average, 0);
  // Latency percentiles: weighted by each instance's request count (one instance in the common case).
  const total = results.reduce((s, r) => s + r.requests.total, 0) || 1;
  const w = (k: string) => results.reduce((s, r) => s + r.latency[k] * (r.requests.total / total), 0);
  return {
    rps: Math.round(rps),
    p50_ms: Math.round(w('p50') * 100) / 100,
    p99_ms: Math.round(w('p99') * 100) / 100,
    errors: results.reduce((s, r) => s + r.errors + r.timeouts + r.non2xx, 0),
    requests: results.reduce((s, r) => s + r.requests.total, 0),
  };
}

export async function runBench(name: string, opts: Record<string, string> = {}): Promise<any> {
  const root = repoRoot();
  const scenario: Scenario = (await import(pathToFileURL(join(root, 'load-tests/scenarios', `${name}.js`)).href)).default;
  if (scenario.run) return runCustom(root, name, scenario, opts);
  const durationS = seconds(opts.duration ?? scenario.duration ?? '10s');
  const warmupS = seconds(opts.warmup ?? scenario.warmup ?? '3s');
  const connections = Number(opts.connections ?? scenario.connections ?? 64);
  const modes = opts.modes ? opts.modes.split(',') : Object.keys(scenario.modes);
  for (const m of modes) if (!scenario.modes[m]) throw new Error(`scenario ${name} has no mode '${m}' (modes: ${Object.keys(scenario.modes).join(', ')})`);
  const log = (msg: string) => console.error(`[bench ${name}] ${msg}`);
  const ctx: BenchContext = { root, log, load: (specifier) => import(specifier) };
  const startedAt = new Date().toISOString();
  log(`${scenario.description}; ${modes.length} modes × (${warmupS}s warm-up + ${durationS}s), ${connections} connections`);
  const data = scenario.setup ? await scenario.setup(ctx) : {};
  const stack = modes.some((m) => scenario.modes[m].dbCpu !== undefined) ? await import(pathToFileURL(join(root, 'docker/local/stack.mjs')).href) : null;
  const results: Record<string, ModeResult> = {};
  try {
    for (const [i, mode] of modes.entries()) {
      const def = scenario.modes[mode];
      if (stack) {
        await stack.setCpuCap('off');
        if (def.dbCpu != null) await stack.setCpuCap(def.dbCpu, def.dbCpuNodes);
      }
      const started = await Promise.allSettled(Array.from({ length: def.instances ?? 1 }, (_, k) => startTarget(root, def, k)));
      const targets = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failure = started.find((r) => r.status === 'rejected');
      if (failure) {
        // One instance failed to start: stop the others before reporting, never leave orphans behind.
        await Promise.all(targets.map((t) => stopTarget(t.proc)));
        throw (failure as PromiseRejectedResult).reason;
      }
      try {
        ctx.baseUrl = targets[0].url;
        if (scenario.beforeMode) await scenario.beforeMode(ctx, mode, data);
        log(`mode ${mode}: warm-up ${warmupS}s`);
        if (warmupS > 0) await fire(scenario, mode, targets.map((t) => t.url), data, connections, warmupS, 1000 + i);
        log(`mode ${mode}: measuring ${durationS}s`);
        const measureState = scenario.beforeMeasure ? await scenario.beforeMeasure(ctx, mode, data) : undefined;
        results[mode] = await fire(scenario, mode, targets.map((t) => t.url), data, connections, durationS, 1 + i);
        const extra = scenario.afterMeasure ? await scenario.afterMeasure(ctx, mode, data, measureState, durationS, results[mode]) : undefined;
        if (extra) results[mode].extra = extra;
        log(`mode ${mode}: ${results[mode].rps} req/s, p99 ${results[mode].p99_ms} ms, ${results[mode].errors} errors`);
      } finally {
        await Promise.all(targets.map((t) => stopTarget(t.proc)));
      }
    }
  } finally {
    if (stack) await stack.setCpuCap('off');
  }
  const ratios: Record<string, number> = {};
  for (const [rname, [a, b, metric = 'rps']] of Object.entries(scenario.ratios ?? {})) {
    if (results[a] && results[b] && results[b][metric] > 0) ratios[rname] = Math.round((results[a][metric] / results[b][metric]) * 100) / 100;
  }
  const out = {
    scenario: name,
    description: scenario.description,
    startedAt,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    settings: { durationS, warmupS, connections },
    modes: results,
    ratios,
  };
  const file = resultFile(root, name, opts);
  // --write false: a CI smoke run asserts its own ratio without replacing the documented results.
  if (opts.write !== 'false') writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(markdown(out));
  if (opts.write !== 'false') console.log(`\nwritten ${file}`);
  return out;
}

/** load-tests/results/<scenario>.json, or --out <file> (CI's short runs keep the documented results intact). */
function resultFile(root: string, name: string, opts: Record<string, string>): string {
  const file = opts.out ? resolve(root, opts.out) : join(root, 'load-tests/results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

async function runCustom(root: string, name: string, scenario: Scenario, opts: Record<string, string>) {
  const log = (msg: string) => console.error(`[bench ${name}] ${msg}`);
  const startedAt = new Date().toISOString();
  log(scenario.description);
  const start = async (mode: ModeDef) => {
    const t = await startTarget(root, mode);
    return { url: t.url, stop: () => stopTarget(t.proc) };
  };
  const r = await scenario.run!({ root, log, load: (specifier) => import(specifier), startTarget: start }, opts);
  const out = { scenario: name, description: scenario.description, startedAt, machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version }, settings: opts, modes: r.modes ?? {}, ratios: r.ratios, tables: r.tables ?? [], details: r.details };
  const file = resultFile(root, name, opts);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log([...(r.tables ?? []), markdown({ scenario: name, modes: out.modes, ratios: out.ratios })].join('\n\n'));
  console.log(`\nwritten ${file}`);
  return out;
}

export function markdown(out: { scenario: string; modes: Record<string, ModeResult>; ratios: Record<string, number> }): string {
  const extras = [...new Set(Object.values(out.modes).flatMap((r) => Object.keys(r.extra ?? {})))];
  const lines = [
    `### ${out.scenario}`,
    '',
    `| mode | req/s | p50 ms | p99 ms | errors |${extras.map((e) => ` ${e} |`).join('')}`,
    `|---|---:|---:|---:|---:|${extras.map(() => '---:|').join('')}`,
  ];
  for (const [m, r] of Object.entries(out.modes)) lines.push(`| ${m} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} |${extras.map((e) => ` ${r.extra?.[e] ?? '-'} |`).join('')}`);
  if (Object.keys(out.ratios).length) {
    lines.push('', '| ratio | value |', '|---|---:|');
    for (const [k, v] of Object.entries(out.ratios)) lines.push(`| ${k} | ${v} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { name, opts } = parseArgs(process.argv.slice(2));
  if (!name) {
    console.error('usage: npm run bench -- <scenario> [--duration 10s] [--warmup 3s] [--connections N] [--modes a,b]');
    process.exit(2);
  }
  runBench(name, opts).then(
    () => process.exit(0),
    (e) => {
      console.error(`bench failed: ${e.message}`);
      process.exit(1);
    },
  );
}
