/**
 * `node scripts/run.mjs load-tests/runner/profile.js <scenario> <mode> [--duration 15s] [--warmup 5s] [--connections 64] [--out file] [--keep dir]`
 *
 * A CPU profile of ONE shop-api process under a scenario's load: the mode's target is started with
 * `node --cpu-prof`, the scenario's setup and beforeMode run (seeding, pre-warm) and a warm-up; V8 profiles
 * from start to exit, so the summary counts only the samples taken inside the measured window. Then the process exits on SIGUSR2 (an exit that
 * writes the profile; SIGTERM is re-raised by Nest's shutdown hooks and would lose it), and the samples are
 * split by cost centre: the innermost stack frame that belongs to a named part of the pipeline (router,
 * Nest pipeline, async context, validation, serialization, metrics, logging, cache, Redis, HTTP, idle…).
 * The .cpuprofile stays under var/ (not committed); the summary is written to
 * load-tests/results/<scenario>-profile-<mode>.json with its provenance.
 */
import { readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { repoRoot } from '#libs/core';
import { baseProvenance, settingsFromEnv } from './provenance.js';
import { loadScenario } from './scenarios.js';
import { parseArgs, startTarget, type Scenario } from './bench.js';
import { mulberry32 } from '../../tools/sample-data.js';


interface CallFrame { functionName: string; url: string }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** A socket write (the syscall itself): counted by who writes, the HTTP response, a Redis command or a query. */
const WRITE = /^(writev|writeUtf8String|writeBuffer|writeLatin1String|writeAsciiString|writeUcs2String)$/;
const WRITERS: Array<[string, RegExp]> = [
  ['socket writes: Redis commands (ioredis)', /\/ioredis\//],
  ['socket writes: MySQL queries (mysql2)', /\/mysql2\//],
  ['socket writes: HTTP responses', /^node:_http_(outgoing|server)/],
];

/** Cost centres, matched against one frame; the innermost frame that matches any of them takes the sample. */
const CENTRES: Array<[string, (f: CallFrame) => boolean]> = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['gc', (f) => f.functionName === '(garbage collector)'],
  ['metrics (prom-client)', (f) => f.url.includes('/prom-client/')],
  ['logging (pino)', (f) => f.url.includes('/pino') || f.url.includes('pino-nest-logger') || f.url.includes('/sonic-boom/')],
  ['validation + transformation (pipes, class-validator/-transformer, parseId)', (f) => f.url.includes('/class-validator/') || f.url.includes('/class-transformer/') || f.url.includes('/@nestjs/common/pipes/') || f.functionName === 'parseId'],
  ['async context + consistency scope', (f) => f.url.includes('consistency') || f.url.includes('node:async_hooks') || f.url.includes('async_local_storage') || f.url.includes('async_context_frame')],
  ['serialization (JSON.stringify, reply serializers)', (f) => f.functionName === 'stringify' || f.functionName === 'JSONStringify' || f.url.includes('/fast-json-stringify/') || (f.url.includes('/fastify/lib/') && /serializ/i.test(f.functionName))],
  ['HTTP cache (ETag, If-None-Match, Cache-Control)', (f) => f.url.includes('product-http')],
  ['cache (ProductCache, CacheAside, lru-cache)', (f) => f.url.includes('/libs/cache/') || f.url.includes('/lru-cache/')],
  ['redis (ioredis)', (f) => f.url.includes('/ioredis/') || f.url.includes('/redis-parser/') || f.url.includes('/denque/')],
  ['database (mysql2)', (f) => f.url.includes('/mysql2/')],
  ['Nest pipeline (router-execution, interceptors, guards, rxjs)', (f) => f.url.includes('/@nestjs/') || f.url.includes('/rxjs/')],
  ['router (find-my-way)', (f) => f.url.includes('/find-my-way/')],
  ['fastify core (hooks, request/reply)', (f) => f.url.includes('/fastify/') || f.url.includes('/avvio/') || f.url.includes('/light-my-request/') || f.url.includes('/@fastify/')],
  ['app code (controllers, services, hooks)', (f) => f.url.includes('/dist/apps/') || f.url.includes('/dist/libs/')],
  ['node http + net (parsing, headers, streams)', (f) => /^node:(_http|http|net|stream|internal\/(http|stream|streams|net|timers))/.test(f.url) || f.url.startsWith('node:internal/stream')],
  ['node other (timers, crypto, process)', (f) => f.url.startsWith('node:')],
];

export function summarise(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const centreOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = centreOf.get(id);
    if (known) return known;
    let cur: number | undefined = id;
    let found = 'other (native, program)';
    if (WRITE.test(byId.get(id)!.callFrame.functionName)) {
      found = 'socket writes: other';
      for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
        const w = WRITERS.find(([, re]) => re.test(byId.get(up!)!.callFrame.url));
        if (w) {
          found = w[0];
          break;
        }
      }
      cur = undefined;
    }
    while (cur !== undefined) {
      const f = byId.get(cur)!.callFrame;
      const hit = CENTRES.find(([, match]) => match(f));
      if (hit) {
        found = hit[0];
        break;
      }
      cur = parent.get(cur);
    }
    centreOf.set(id, found);
    return found;
  };
  const us: Record<string, number> = {};
  let t = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) return;
    const d = profile.timeDeltas[i];
    const c = classify(id);
    us[c] = (us[c] ?? 0) + d;
    total += d;
  });
  const busy = total - (us.idle ?? 0);
  const centres = Object.fromEntries(
    Object.entries(us)
      .sort((a, b) => b[1] - a[1])
      .map(([c, v]) => [c, { ms: Math.round(v / 1000), pct_of_window: Math.round((v / total) * 1000) / 10, pct_of_busy: c === 'idle' ? null : Math.round((v / busy) * 1000) / 10 }]),
  );
  return { windowMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), centres };
}

const seconds = (s: string) => (s.endsWith('ms') ? Number(s.slice(0, -2)) / 1000 : s.endsWith('s') ? Number(s.slice(0, -1)) : Number(s));

async function main() {
  const [scenarioName, mode, ...rest] = process.argv.slice(2);
  if (!scenarioName || !mode || mode.startsWith('--')) throw new Error('usage: node scripts/run.mjs load-tests/runner/profile.js <scenario> <mode> [--duration 15s] [--warmup 5s] [--connections 64] [--out file]');
  const o = parseArgs(['x', ...rest]).opts;
  const root = repoRoot();
  const scenario: Scenario = (await loadScenario(scenarioName)).default;
  const def = scenario.modes[mode];
  if (!def) throw new Error(`scenario ${scenarioName} has no mode '${mode}'`);
  if (def.dbCpu != null) throw new Error(`mode ${mode} is CPU-capped; profile an uncapped mode (the API process is what is profiled)`);
  const durationS = seconds(o.duration ?? '15s');
  const warmupS = seconds(o.warmup ?? '5s');
  const connections = Number(o.connections ?? scenario.connections ?? 64);
  const dir = resolve(root, o.keep ?? `var/profiles/${scenarioName}-${mode}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const log = (m: string) => console.error(`[profile ${scenarioName}/${mode}] ${m}`);
  const prov = baseProvenance(root);
  prov.command = [...settingsFromEnv(), `node scripts/run.mjs load-tests/runner/profile.js ${process.argv.slice(2).join(' ')}`].join(' ');
  const ctx = { root, log, onCleanup: () => undefined } as any;
  const data = scenario.setup ? await scenario.setup(ctx) : {};
  const exitOnUsr2 = "data:text/javascript,process.on('SIGUSR2',()=>process.exit(0))";
  const { url, proc } = await startTarget(root, { ...def, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, '--import', exitOnUsr2] });
  try {
    ctx.baseUrl = url;
    if (scenario.beforeMode) await scenario.beforeMode(ctx, mode, data);
    const rand = mulberry32(7);
    const fire = (s: number) =>
      autocannon({
        url,
        connections,
        duration: s,
        requests: [{ setupRequest: (req: any) => ({ ...req, ...scenario.request(rand, data, mode) }) }],
      } as any) as Promise<any>;
    log(`warm-up ${warmupS}s`);
    await fire(warmupS);
    log(`profiling ${durationS}s`);
    // The scenario's own counters around the profiled window (hot-products: L1/L2 hit shares, SELECTs per 1k).
    const state = scenario.beforeMeasure ? await scenario.beforeMeasure(ctx, mode, data) : undefined;
    const from = Date.now();
    const r = await fire(durationS);
    const to = Date.now();
    const extra = scenario.afterMeasure ? await scenario.afterMeasure(ctx, mode, data, state, durationS, { rps: 0, p50_ms: 0, p99_ms: 0, errors: 0, requests: r.requests.total }) : undefined;
    const exited = new Promise((res) => proc.once('exit', res));
    proc.kill('SIGUSR2');
    await exited;
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
    const profile: CpuProfile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    // V8's timestamps are µs on a monotonic clock; the window is located from the profile's end (= exit).
    const endWall = Date.now();
    const offsetUs = profile.endTime - (endWall - to) * 1000;
    const summary = summarise(profile, offsetUs - (to - from) * 1000, offsetUs);
    const out = {
      scenario: scenarioName,
      mode,
      description: `CPU profile of one shop-api process (node --cpu-prof) while autocannon drives ${scenario.description}; samples of the measured window only, split by the innermost frame that belongs to a named cost centre`,
      provenance: { ...prov, loadavg: { before: prov.loadavg.before, after: loadavg().map((l) => Math.round(l * 100) / 100) } },
      load: { durationS, warmupS, connections, rps: Math.round(r.requests.average), p99_ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors, ...(extra ? { extra } : {}) },
      profileFile: join(dir, file),
      windowUs: [Math.round(offsetUs - (to - from) * 1000), Math.round(offsetUs)],
      ...summary,
    };
    const outFile = resolve(root, o.out ?? `load-tests/results/${scenarioName}-profile-${mode}.json`);
    writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n');
    console.log(`| cost centre | ms | % of window | % of busy |\n|---|---:|---:|---:|`);
    for (const [c, v] of Object.entries(summary.centres)) console.log(`| ${c} | ${v.ms} | ${v.pct_of_window} | ${v.pct_of_busy ?? '–'} |`);
    console.log(`\n${out.load.rps} req/s under the profiler; written ${outFile} (profile kept in ${join(dir, file)})`);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(`profile failed: ${e.message}`);
      process.exit(1);
    },
  );
}
