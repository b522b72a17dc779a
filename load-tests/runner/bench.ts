/**
 * `npm run bench -- <scenario> [--duration 10s] [--warmup 3s] [--connections N] [--modes a,b] [--out file]
 *   [--uncapped-ok] [--calibrate <reads/s per node>|off] [--timeout 20m]`
 *
 * Runs every mode of a scenario in one run, each against a freshly started target process (a mode may
 * start shop-api with different settings, or cap the database nodes' CPU through the native stack),
 * with a warm-up that is not measured. Prints a markdown table and writes
 * load-tests/results/<scenario>.json: {scenario, provenance, settings, modes:{rps,p50_ms,p99_ms,errors,cpu,…}, ratios, ratiosOmitted}.
 * The load generator (autocannon) runs in this process; the target runs in its own.
 *
 * Capped modes need a cgroup cpu controller (v1 or v2, see docker/local/stack.mjs); without one the run stops
 * unless --uncapped-ok, which measures uncapped and marks the modes so (their ratios are then omitted).
 * A mode that names the nodes that should bound it (`boundBy`) gets a saturation verdict from /proc CPU use and
 * cgroup throttling;
 * a ratio over a mode that was not capacity-bound is omitted with the reason. SIGINT/SIGTERM/--timeout undo
 * the caps, stop the targets and run the scenario's cleanups before exiting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { loadConfig, repoRoot } from '#libs/core';
import { migrateAll } from '#libs/db';
import { launcher, type Stack } from './launcher.js';
import { loadScenario } from './scenarios.js';
import { baseProvenance, cpuSnapshot, finishProvenance, processCpuSeconds, saturationVerdict, serverVersions, type CapRecord, type Provenance, type Throttle } from './provenance.js';
import { mulberry32 } from '../../tools/sample-data.js';

export interface ModeDef {
  target: 'bare' | 'api';
  env?: Record<string, string>;
  /** Cap every database node of the native stack to this share of one core for this mode (0.1 = 10%). */
  dbCpu?: number | null;
  /** Only cap these native-stack nodes (e.g. ['shard-0','shard-1']); the other database nodes run uncapped. Default: all. */
  dbCpuNodes?: string[];
  /** Number of shop-api processes behind a round-robin (default 1). */
  instances?: number;
  /** The capped nodes that should be the bottleneck of this mode (e.g. ['replica-1','replica-2']): at least one must be saturated (≥ 85 % of its quota, or throttled in ≥ 90 % of CFS periods), else the mode is "not capacity-bound" and ratios over it are omitted. */
  boundBy?: string[];
  /** Extra node flags for the target process (e.g. --cpu-prof, used by profile.ts). */
  nodeArgs?: string[];
}

/** A benchmark scenario; `D` is what setup() returns, handed to every hook and to request(). */
export interface Scenario<D = any> {
  name: string;
  description: string;
  duration?: string;
  warmup?: string;
  connections?: number;
  modes: Record<string, ModeDef>;
  /**
   * name: [a, b] = a's req/s over b's; [a, b, 'p99_ms'] = a's p99 over b's (a latency ratio: lower is better);
   * [a, b, metricA, metricB]: a's metricA over b's metricB, where a metric may also name an afterMeasure number
   * (`extra`, e.g. the p99 of one cache tier).
   */
  ratios?: Record<string, [string, Ceiling] | [string, Ceiling, string] | [string, Ceiling, string, string]>;
  /** A target for a ratio, e.g. { l1l2_vs_bare: ['>=', 0.75] }: the result file records each as met or not met. */
  goals?: Record<string, [Goal['op'], number]>;
  /** The scenario reads the application schema: the runner migrates first (a fresh stack has no database yet). */
  schema?: boolean;
  /** Pick the cap from a short uncapped probe of `mode` so that `node` is worth `targetRps` requests/s (option --calibrate N|off). */
  calibrate?: { mode: string; node: string; targetRps: number; probe?: string; /** the smallest cap the calibration may pick (CPU) */ minCap?: number };
  setup?: (ctx: BenchContext) => Promise<D>;
  /** Called before each mode (after its target is up): e.g. to empty a cache. */
  beforeMode?: (ctx: BenchContext, mode: string, data: D) => Promise<void>;
  /** Around the measured run only (not the warm-up): `after` returns extra numbers for the mode's row (e.g. a server-side query rate). */
  beforeMeasure?: (ctx: BenchContext, mode: string, data: D) => Promise<any>;
  afterMeasure?: (ctx: BenchContext, mode: string, data: D, state: any, durationS: number, result: ModeResult) => Promise<Record<string, number> | void>;
  /** A measurement that is not an HTTP load (e.g. database experiments): returns its own modes/ratios/tables. */
  run?: (
    ctx: BenchContext,
    opts: Record<string, string>,
  ) => Promise<{ modes?: Record<string, ModeResult>; ratios: Record<string, number>; tables?: string[]; details?: unknown; /** caps the run applied itself (its provenance line says so) */ caps?: Partial<Provenance['caps']> }>;
  /** Put something in front of the mode's targets (e.g. an edge cache): the load then goes to `urls`; `pids` join the CPU accounting; stop() runs after the mode. */
  front?: (ctx: BenchContext, mode: string, targetUrls: string[]) => Promise<{ urls: string[]; pids?: Record<string, number>; stop: () => Promise<void> } | null>;
  request: (rand: () => number, data: any, mode: string) => { method?: string; path: string; headers?: Record<string, string>; body?: unknown };
  /**
   * A response header whose value splits the latency percentiles (e.g. 'x-cache': one p50/p99 per cache tier
   * that answered), in ModeResult.latencyBy. Every mode of the run pays the same per-response bookkeeping.
   */
  latencyBy?: string;
}

/** A result file as the runner writes it (load-tests/results/<scenario>.json): what a demo headline reads. */
export interface BenchResult {
  scenario: string;
  modes: Record<string, ModeResult>;
  ratios: Record<string, number>;
  ratiosOmitted?: Record<string, string>;
  tables?: string[];
  /** A `run` scenario's own numbers. */
  details?: any;
}

/** A scenario's preset for `npm run demo` (scripts/demo.mjs): short options, and the one-paragraph headline of its result. */
export interface DemoPreset {
  opts: Record<string, string | number | boolean>;
  /** Environment of the bench process. */
  env?: Record<string, string>;
  /** Options that replace `opts`' capped modes where no cgroup cpu controller exists. */
  uncapped?: Record<string, string | boolean>;
  headline(r: BenchResult, ctx: { root: string }): string | Promise<string>;
}

/**
 * The mode a ratio divides by, or several measurements of one reference (e.g. ['bare', 'bare_again'] on a shared
 * box): the best of those that ran is taken — the highest req/s, the lowest latency — so a reference measured
 * while the box was busiest never flatters the ratio.
 */
export type Ceiling = string | string[];

export interface Goal {
  op: '>=' | '>' | '<=' | '<';
  target: number;
  /** The ratio measured in this run (null: omitted or not measured, see ratiosOmitted). */
  value: number | null;
  met: boolean | null;
}

/** Each goal against its ratio of this run. */
export function checkGoals(goals: Scenario['goals'], ratios: Record<string, number>): Record<string, Goal> {
  const cmp = { '>=': (a: number, b: number) => a >= b, '>': (a: number, b: number) => a > b, '<=': (a: number, b: number) => a <= b, '<': (a: number, b: number) => a < b };
  return Object.fromEntries(Object.entries(goals ?? {}).map(([k, [op, target]]) => [k, { op, target, value: ratios[k] ?? null, met: ratios[k] == null ? null : cmp[op](ratios[k], target) }]));
}

export interface BenchContext {
  root: string;
  baseUrl?: string;
  /** Every target of the current mode (instances > 1), in start order; baseUrl is the first. */
  urls?: string[];
  log: (msg: string) => void;
  /** `run` scenarios only: start a target process with a mode's settings (e.g. shop-api with its env); stop() ends it. */
  startTarget?: (mode: ModeDef) => Promise<{ url: string; stop: () => Promise<void> }>;
  /** Something to undo when the run ends or is interrupted (SIGINT/SIGTERM/--timeout), e.g. dropping bench tables. Runs once. */
  onCleanup: (fn: () => Promise<unknown> | unknown) => void;
}

export interface ModeResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
  /** The box's 1-minute load average when the measurement started and when it ended. */
  loadavg?: [number, number];
  /** Scenario.latencyBy: per value of that response header, its requests and latency percentiles ('-' = no header). */
  latencyBy?: Record<string, { requests: number; p50_ms: number; p99_ms: number }>;
  /** Scenario-specific numbers from afterMeasure. */
  extra?: Record<string, number>;
  /** Cores used over the measured window per process: database nodes by name, api-<i>, runner (the load generator). */
  cpu?: Record<string, number | null>;
  /** Modes with `boundBy`: CFS periods and throttled periods of each named node's cgroup over the window. */
  throttle?: Record<string, Throttle | null>;
  /** Modes with `boundBy`: whether the named capped nodes were saturated. */
  capacityBound?: boolean;
  boundReason?: string;
}

function seconds(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration '${s}' (use e.g. 10s, 500ms, 1m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

const FLAGS = new Set(['uncapped-ok']);
export function parseArgs(argv: string[]) {
  const [name, ...rest] = argv;
  const opts: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(rest[i]);
    if (!m) throw new Error(`unexpected argument '${rest[i]}'`);
    opts[m[1]] = m[2] ?? (FLAGS.has(m[1]) ? 'true' : rest[++i]);
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
  const proc = spawn(process.execPath, [...(mode.nodeArgs ?? []), entry], {
    cwd: root,
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: process.env.NODE_ENV || 'development', INSTANCE: String(index), ...mode.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(mode.target === 'bare' ? url : `${url}/health/live`);
  return { url, proc };
}

async function stopTarget(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
  await done;
  clearTimeout(t);
}

async function fire(scenario: Scenario, mode: string, urls: string[], data: unknown, connections: number, durationS: number, seed: number): Promise<ModeResult> {
  const rand = mulberry32(seed);
  let rr = 0;
  // latencyBy: onResponse sees the headers, then autocannon emits 'response' with the latency on the same
  // client, synchronously: the client's context carries the header value from one to the other.
  const by = scenario.latencyBy;
  const split = new Map<string, number[]>();
  const onResponse = by ? (_status: number, _body: unknown, context: Record<string, unknown>, headers: Record<string, string>) => void (context.by = headers[by] ?? '-') : undefined;
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
          ...(onResponse ? { onResponse } : {}),
        },
      ],
    } as any),
  );
  if (by) {
    for (const inst of instances as any[]) {
      inst.on('response', (client: any, _status: number, _bytes: number, ms: number) => {
        const k = String(client.requestIterator?.context?.by ?? '-');
        let xs = split.get(k);
        if (!xs) split.set(k, (xs = []));
        xs.push(ms);
      });
    }
  }
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
    ...(by ? { latencyBy: latencySplit(split) } : {}),
  };
}

/** Nearest-rank percentiles of each group's latencies (all samples kept: a mode is ≤ a few 10^5 responses). */
function latencySplit(split: Map<string, number[]>): NonNullable<ModeResult['latencyBy']> {
  const out: NonNullable<ModeResult['latencyBy']> = {};
  // `all`: every response through the same computation, so a group's p99 compares with another mode's like for like.
  const groups = [...split].sort(([a], [b]) => a.localeCompare(b));
  for (const [k, xs] of [...groups, ['all', groups.flatMap(([, v]) => v)] as [string, number[]]]) {
    const a = Float64Array.from(xs).sort();
    const at = (q: number) => Math.round(a[Math.min(a.length - 1, Math.ceil(q * a.length) - 1)] * 100) / 100;
    out[k] = { requests: a.length, p50_ms: at(0.5), p99_ms: at(0.99) };
  }
  return out;
}

/** Undo-on-exit: cleanups run once, at the end of the run or on SIGINT/SIGTERM/--timeout. */
function cleanupRegistry(log: (m: string) => void, timeoutS: number | null) {
  const fns: Array<() => Promise<unknown> | unknown> = [];
  let ran: Promise<void> | null = null;
  const runAll = () =>
    (ran ??= (async () => {
      for (const fn of fns.reverse()) {
        try {
          await fn();
        } catch (e) {
          log(`cleanup failed: ${(e as Error).message}`);
        }
      }
    })());
  const abort = (why: string, code: number) => {
    log(`${why}: undoing caps, stopping targets, running the scenario's cleanups`);
    void runAll().finally(() => process.exit(code));
  };
  const onInt = () => abort('SIGINT', 130);
  const onTerm = () => abort('SIGTERM', 143);
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const timer = timeoutS ? setTimeout(() => abort(`timeout after ${timeoutS}s`, 124), timeoutS * 1000) : null;
  timer?.unref();
  return {
    add: (fn: () => Promise<unknown> | unknown) => void fns.push(fn),
    async done() {
      await runAll();
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (timer) clearTimeout(timer);
    },
  };
}

const isOn = (v: string | undefined) => v !== undefined && v !== 'false' && v !== '0';

function appConfigUrls(): { primary: string; redis: string } {
  try {
    const c = loadConfig();
    return { primary: c.db.primary.url, redis: c.redis.cacheUrl };
  } catch {
    return { primary: process.env.DB_PRIMARY_URL || 'mysql://mallscale:mallscale@127.0.0.1:3307/mallscale', redis: process.env.REDIS_CACHE_URL || 'redis://127.0.0.1:6380' };
  }
}

/** Provenance fields that need the servers; schema migration when the scenario reads the app's tables. */
async function prepare(root: string, scenario: Scenario, prov: Provenance, log: (m: string) => void) {
  const urls = appConfigUrls();
  Object.assign(prov, await serverVersions((s) => import(s), urls.primary, urls.redis));
  if (scenario.schema) {
    // A fresh stack (`npm run stack -- reset`) has no application database: migrations are idempotent.
    await migrateAll(loadConfig(), () => undefined);
    log('schema up to date (migrations applied where missing)');
  }
}

async function startTargets(root: string, def: ModeDef) {
  const started = await Promise.allSettled(Array.from({ length: def.instances ?? 1 }, (_, k) => startTarget(root, def, k)));
  const targets = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r) => r.status === 'rejected');
  if (failure) {
    // One instance failed to start: stop the others before reporting, never leave orphans behind.
    await Promise.all(targets.map((t) => stopTarget(t.proc)));
    throw (failure as PromiseRejectedResult).reason;
  }
  return targets;
}

/**
 * The cap that makes `calibrate.node` worth `targetRps` requests/s: a short probe of `calibrate.mode` with the
 * database uncapped measures the node's CPU seconds per request; cap = targetRps × that. On a faster box the
 * cap gets smaller, so one node is worth the same read rate everywhere and stays the bottleneck.
 */
async function calibrateCap(root: string, scenario: Scenario, stack: Stack, targetRps: number, data: unknown, connections: number, log: (m: string) => void) {
  const c = scenario.calibrate!;
  const def = scenario.modes[c.mode];
  const probeS = seconds(c.probe ?? '3s');
  await stack.setCpuCap('off');
  const targets = await startTargets(root, def);
  try {
    await fire(scenario, c.mode, targets.map((t) => t.url), data, connections, 1, 999);
    const pid = stack.nodes.find((n) => n.name === c.node)?.pid ?? null;
    const before = pid ? processCpuSeconds(pid) : null;
    const r = await fire(scenario, c.mode, targets.map((t) => t.url), data, connections, probeS, 998);
    const after = pid ? processCpuSeconds(pid) : null;
    if (before == null || after == null || r.requests === 0) throw new Error(`calibration: no CPU reading for ${c.node} (pid ${pid}) or no requests answered`);
    const cpuPerRequestS = (after - before) / r.requests;
    const cap = Math.min(cpus().length, Math.max(c.minCap ?? 0.01, Math.round(targetRps * cpuPerRequestS * 1000) / 1000));
    log(`calibration: ${c.node} spent ${Math.round(cpuPerRequestS * 1e6)} µs CPU per request uncapped (${r.rps} req/s over ${probeS}s); cap ${cap} CPU ≈ ${targetRps} req/s per node`);
    return { mode: c.mode, node: c.node, probeS, requests: r.requests, uncappedRps: r.rps, cpuPerRequestUs: Math.round(cpuPerRequestS * 1e6), targetRps, cap };
  } finally {
    await Promise.all(targets.map((t) => stopTarget(t.proc)));
  }
}

export async function runBench(name: string, opts: Record<string, string> = {}): Promise<any> {
  const root = repoRoot();
  const scenario: Scenario = (await loadScenario(name)).default;
  if (scenario.run) return runCustom(root, name, scenario, opts);
  const durationS = seconds(opts.duration ?? scenario.duration ?? '10s');
  const warmupS = seconds(opts.warmup ?? scenario.warmup ?? '3s');
  const connections = Number(opts.connections ?? scenario.connections ?? 64);
  const modes = opts.modes ? opts.modes.split(',') : Object.keys(scenario.modes);
  for (const m of modes) if (!scenario.modes[m]) throw new Error(`scenario ${name} has no mode '${m}' (modes: ${Object.keys(scenario.modes).join(', ')})`);
  const log = (msg: string) => console.error(`[bench ${name}] ${msg}`);
  const prov = baseProvenance(root);
  prov.caps.uncappedOk = isOn(opts['uncapped-ok']);
  const capped = modes.filter((m) => scenario.modes[m].dbCpu != null);
  const stack: Stack | null = modes.some((m) => scenario.modes[m].target === 'api') ? await launcher() : null;
  if (capped.length && stack) {
    const mech = stack.capMechanism();
    prov.caps.mechanism = mech.mechanism;
    if (mech.mechanism === 'none') {
      if (!prov.caps.uncappedOk) throw new Error(`modes ${capped.join(', ')} need CPU caps, but ${mech.reason}; rerun with --uncapped-ok to measure them uncapped (marked so, and their ratios omitted)`);
      prov.caps.reason = mech.reason;
      log(`CPU caps unavailable (${mech.reason}): --uncapped-ok, so modes ${capped.join(', ')} run UNCAPPED and are marked so`);
    }
  }
  const cleanup = cleanupRegistry(log, opts.timeout ? seconds(opts.timeout) : null);
  const ctx: BenchContext = { root, log, onCleanup: cleanup.add };
  const results: Record<string, ModeResult> = {};
  try {
    await prepare(root, scenario, prov, log);
    log(`${scenario.description}; ${modes.length} modes × (${warmupS}s warm-up + ${durationS}s), ${connections} connections`);
    const data = scenario.setup ? await scenario.setup(ctx) : {};
    if (stack && capped.length) cleanup.add(() => stack.setCpuCap('off'));
    let calibrated: number | null = null;
    const target = opts.calibrate === 'off' ? null : Number(opts.calibrate ?? scenario.calibrate?.targetRps);
    if (scenario.calibrate && target && stack && capped.length && prov.caps.mechanism !== 'none') {
      const cal = await calibrateCap(root, scenario, stack, target, data, connections, log);
      prov.caps.calibration = cal;
      calibrated = cal.cap;
    }
    for (const [i, mode] of modes.entries()) {
      const def = scenario.modes[mode];
      const t0 = Date.now();
      const requested = def.dbCpu == null ? null : (calibrated ?? def.dbCpu);
      let cap: CapRecord = { requested, applied: false, mechanism: prov.caps.mechanism, nodes: [] };
      if (stack && capped.length) {
        await stack.setCpuCap('off');
        if (requested != null) {
          const r = await stack.setCpuCap(requested, def.dbCpuNodes);
          cap = { requested, applied: r.applied, mechanism: r.mechanism, nodes: r.nodes, periodUs: r.periodUs, ...(r.applied ? {} : { reason: r.reason }) };
        }
      }
      prov.caps.modes[mode] = cap;
      const modeDef = requested === def.dbCpu ? def : { ...def, dbCpu: requested };
      const targets = await startTargets(root, modeDef);
      let front: Awaited<ReturnType<NonNullable<Scenario['front']>>> = null;
      const stopAll = async () => {
        await front?.stop();
        await Promise.all(targets.map((t) => stopTarget(t.proc)));
      };
      cleanup.add(stopAll);
      try {
        ctx.baseUrl = targets[0].url;
        ctx.urls = targets.map((t) => t.url);
        if (scenario.front) front = await scenario.front(ctx, mode, ctx.urls);
        const loadUrls = front?.urls ?? ctx.urls;
        if (scenario.beforeMode) await scenario.beforeMode(ctx, mode, data);
        log(`mode ${mode}: warm-up ${warmupS}s`);
        if (warmupS > 0) await fire(scenario, mode, loadUrls, data, connections, warmupS, 1000 + i);
        log(`mode ${mode}: measuring ${durationS}s`);
        const measureState = scenario.beforeMeasure ? await scenario.beforeMeasure(ctx, mode, data) : undefined;
        const pids: Record<string, number | null> = {};
        for (const n of stack?.nodes ?? []) if (n.kind === 'mariadb') pids[n.name] = n.pid;
        targets.forEach((t, k) => (pids[`api-${k}`] = t.proc.pid ?? null));
        Object.assign(pids, front?.pids ?? {});
        pids.runner = process.pid;
        const snap = cpuSnapshot(pids);
        const throttled0: Record<string, Throttle | null> = def.boundBy && stack ? stack.throttleStats(def.boundBy) : {};
        const tm = Date.now();
        const load0 = loadavg()[0];
        results[mode] = await fire(scenario, mode, loadUrls, data, connections, durationS, 1 + i);
        // The box's 1-minute load over this mode's measurement (start, end): modes of one run can meet different loads.
        results[mode].loadavg = [Math.round(load0 * 100) / 100, Math.round(loadavg()[0] * 100) / 100];
        results[mode].cpu = snap.since();
        const throttle: Record<string, Throttle | null> = {};
        if (def.boundBy && stack) {
          const throttled1 = stack.throttleStats(def.boundBy);
          for (const n of def.boundBy) {
            const a = throttled0[n];
            const b = throttled1[n];
            throttle[n] = a && b ? { periods: b.periods - a.periods, throttled: b.throttled - a.throttled } : null;
          }
          results[mode].throttle = throttle;
        }
        const measuredS = (Date.now() - tm) / 1000;
        const extra = scenario.afterMeasure ? await scenario.afterMeasure(ctx, mode, data, measureState, durationS, results[mode]) : undefined;
        results[mode].extra = { ...(extra ?? {}), load_1m_start: results[mode].loadavg![0], load_1m_end: results[mode].loadavg![1] };
        if (def.boundBy) {
          const v = saturationVerdict(def.boundBy, results[mode].cpu!, cap, throttle);
          results[mode].capacityBound = v.capacityBound;
          if (!v.capacityBound) results[mode].boundReason = v.reason;
        }
        prov.modeDurationsS[mode] = Math.round((Date.now() - t0) / 100) / 10;
        log(`mode ${mode}: ${results[mode].rps} req/s, p99 ${results[mode].p99_ms} ms, ${results[mode].errors} errors${def.boundBy ? `, ${results[mode].capacityBound ? 'capacity-bound' : `not capacity-bound (${results[mode].boundReason})`}` : ''} (measured ${measuredS.toFixed(1)}s)`);
      } finally {
        await stopAll();
      }
    }
  } finally {
    await cleanup.done();
  }
  const { ratios, ratiosOmitted } = computeRatios(scenario, results, prov);
  const out = {
    scenario: name,
    description: scenario.description,
    startedAt: prov.date,
    provenance: finishProvenance(prov),
    settings: { durationS, warmupS, connections },
    modes: results,
    ratios,
    ...(Object.keys(ratiosOmitted).length ? { ratiosOmitted } : {}),
    ...(scenario.goals ? { goals: checkGoals(scenario.goals, ratios) } : {}),
  };
  const file = resultFile(root, name, opts);
  // --write false: a CI smoke run asserts its own ratio without replacing the documented results.
  if (opts.write !== 'false') writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(markdown(out));
  if (opts.write !== 'false') console.log(`\nwritten ${file}`);
  return out;
}

/** A ratio needs both modes measured as claimed: caps applied where asked, and capacity-bound where a mode names its bottleneck. */
export function computeRatios(scenario: Pick<Scenario, 'ratios'>, results: Record<string, ModeResult>, prov: Pick<Provenance, 'caps'>) {
  const ratios: Record<string, number> = {};
  const ratiosOmitted: Record<string, string> = {};
  const value = (m: string, metric: string): number | undefined => (metric === 'rps' || metric === 'p99_ms' || metric === 'p50_ms' ? results[m][metric] : results[m].extra?.[metric]);
  for (const [rname, [a, ceiling, metric = 'rps', metricB = metric]] of Object.entries(scenario.ratios ?? {})) {
    const refs = [ceiling].flat().filter((m) => results[m]);
    if (!results[a] || !refs.length) continue;
    // Several measurements of the reference: the best one (req/s: highest; a latency: lowest).
    const better = (x: number, y: number) => (metricB === 'rps' ? x > y : x < y);
    const b = refs.reduce((x, m) => {
      const vm = value(m, metricB);
      const vx = value(x, metricB);
      return vm !== undefined && (vx === undefined || better(vm, vx)) ? m : x;
    });
    const why = [a, b].flatMap((m) => {
      const cap = prov.caps.modes[m];
      if (cap && cap.requested != null && !cap.applied) return [`caps not applied: ${m} (${cap.reason ?? 'uncapped run'})`];
      if (results[m].capacityBound === false) return [`not capacity-bound: ${m} (${results[m].boundReason})`];
      return [];
    });
    if (why.length) ratiosOmitted[rname] = why.join('; ');
    else {
      const va = value(a, metric);
      const vb = value(b, metricB);
      if (va !== undefined && vb !== undefined && vb > 0) ratios[rname] = Math.round((va / vb) * 100) / 100;
    }
  }
  return { ratios, ratiosOmitted };
}

/** load-tests/results/<scenario>.json, or --out <file> (CI's short runs keep the documented results intact). */
function resultFile(root: string, name: string, opts: Record<string, string>): string {
  const file = opts.out ? resolve(root, opts.out) : join(root, 'load-tests/results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

async function runCustom(root: string, name: string, scenario: Scenario, opts: Record<string, string>) {
  const log = (msg: string) => console.error(`[bench ${name}] ${msg}`);
  const cleanup = cleanupRegistry(log, opts.timeout ? seconds(opts.timeout) : null);
  const prov = baseProvenance(root);
  prov.caps.uncappedOk = isOn(opts['uncapped-ok']);
  log(scenario.description);
  const start = async (mode: ModeDef) => {
    const t = await startTarget(root, mode);
    cleanup.add(() => stopTarget(t.proc)); // an interrupted run leaves no target behind
    return { url: t.url, stop: () => stopTarget(t.proc) };
  };
  const t0 = Date.now();
  let r: Awaited<ReturnType<NonNullable<Scenario['run']>>>;
  try {
    await prepare(root, scenario, prov, log);
    r = await scenario.run!({ root, log, startTarget: start, onCleanup: cleanup.add }, opts);
  } finally {
    await cleanup.done();
  }
  prov.modeDurationsS.run = Math.round((Date.now() - t0) / 100) / 10;
  if (r.caps) Object.assign(prov.caps, r.caps);
  const out = { scenario: name, description: scenario.description, startedAt: prov.date, provenance: finishProvenance(prov), settings: opts, modes: r.modes ?? {}, ratios: r.ratios, tables: r.tables ?? [], details: r.details };
  const file = resultFile(root, name, opts);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log([...(r.tables ?? []), markdown({ scenario: name, modes: out.modes, ratios: out.ratios })].join('\n\n'));
  console.log(`\nwritten ${file}`);
  return out;
}

/** A result as markdown: modes (with the cap each ran under and its saturation verdict, where asked) and ratios. */
export function markdown(out: { scenario: string; modes: Record<string, ModeResult>; ratios: Record<string, number>; ratiosOmitted?: Record<string, string>; provenance?: Pick<Provenance, 'caps'> }): string {
  const extras = [...new Set(Object.values(out.modes).flatMap((r) => Object.keys(r.extra ?? {})))];
  const caps = out.provenance?.caps.modes ?? {};
  const withCap = Object.values(caps).some((c) => c.requested != null);
  const withBound = Object.values(out.modes).some((r) => r.capacityBound !== undefined);
  const capCell = (m: string) => {
    const c = caps[m];
    if (!c || c.requested == null) return 'none';
    return c.applied ? `${c.requested} CPU (cgroup ${c.mechanism})` : `${c.requested} CPU requested, **NOT applied**`;
  };
  const lines = [
    `### ${out.scenario}`,
    '',
    `| mode | req/s | p50 ms | p99 ms | errors |${extras.map((e) => ` ${e} |`).join('')}${withCap ? ' db cap |' : ''}${withBound ? ' capacity-bound |' : ''}`,
    `|---|---:|---:|---:|---:|${extras.map(() => '---:|').join('')}${withCap ? '---|' : ''}${withBound ? '---|' : ''}`,
  ];
  for (const [m, r] of Object.entries(out.modes)) {
    const bound = r.capacityBound === undefined ? '–' : r.capacityBound ? 'yes' : `no: ${r.boundReason}`;
    lines.push(`| ${m} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} |${extras.map((e) => ` ${r.extra?.[e] ?? '-'} |`).join('')}${withCap ? ` ${capCell(m)} |` : ''}${withBound ? ` ${bound} |` : ''}`);
  }
  const omitted = Object.entries(out.ratiosOmitted ?? {});
  if (Object.keys(out.ratios).length || omitted.length) {
    lines.push('', '| ratio | value |', '|---|---:|');
    for (const [k, v] of Object.entries(out.ratios)) lines.push(`| ${k} | ${v} |`);
    for (const [k, why] of omitted) lines.push(`| ${k} | omitted, ${why} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { name, opts } = parseArgs(process.argv.slice(2));
  if (!name) {
    console.error('usage: npm run bench -- <scenario> [--duration 10s] [--warmup 3s] [--connections N] [--modes a,b] [--out file] [--uncapped-ok] [--calibrate N|off] [--timeout 20m]');
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
