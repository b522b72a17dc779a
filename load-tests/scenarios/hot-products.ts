// Scenario `hot-products` (seed Q1, docs/q1-hot-products.md): a few popular products get most of the
// reads on ONE database server; does the cache fix it? GET /products/:id over 100k products whose
// popularity follows Zipf(s = 1.0) (rank r is read with probability ∝ 1/r). Every API mode reads the
// primary only (no replicas: the seed's single server) and the headline modes CPU-cap the database nodes
// (0.1 CPU each, 10 ms CFS period), so the database is the bottleneck the cache must remove; the runner
// checks that `off` really was bound by the primary (else l1l2_vs_off is omitted as "not capacity-bound").
// Modes: bare Fastify (the box's HTTP ceiling), CACHE_MODE=off / l2 / l1l2 capped, and off / l1l2 uncapped;
// l1l2_small_l1 is l1l2 with the L1 bounds of before (10k entries, 5 s) for a same-run comparison.
// Latency is also split by X-Cache (p99 of L1 hits, L2 hits, DB loads) and the API's RSS is read from /metrics.
// Another mode is one more entry in `modes` (a target and its env) plus its ratios; goals name ratios only.
// Goals, recorded as met / not met in the result file: l1l2 ≥ 0.75 × bare, L1+L2 > L2 alone,
// l1l2 ≥ 3 × off uncapped, p99 of cached reads ≤ 2 × bare's.
// Also (see EDGE AND PEER below): `edge` (the same load through Varnish in front of l1l2),
// `nest_cache_manager` (the peer baseline: @nestjs/cache-manager's CacheInterceptor on Redis), and the two
// over two instances (`*_x2`) with a cold stampede and a stampede right after a write.
// Per mode the runner also reports the SELECTs the primary ran for the API's database account per 1,000 requests (server-side counter, measured seconds only).
// The request (Zipf sampling, product ids) is http/hot-products.js, which k6 runs too (load-tests/k6/hot-products.js).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { hash } from '@node-rs/argon2';
import type { BenchContext, DemoPreset, ModeDef, ModeResult, Scenario } from '../runner/bench.js';
import { launcher, type Stack } from '../runner/launcher.js';
import type { Throttle } from '../runner/provenance.js';
import http, { BASE, N, productId, zipfRank } from './http/hot-products.js';
import { connect, untyped, type SqlConnection } from './support.js';

const env = process.env;
const LOCAL = (port: number, user = 'mallscale', pass = 'mallscale') => `mysql://${user}:${pass}@127.0.0.1:${port}/mallscale`;
const PRIMARY = env.DB_PRIMARY_URL || LOCAL(3307);
const CPU = Number(env.BENCH_DB_CPU || 0.1);
// How many of the most popular products the cached modes read once before the timed warm-up (see beforeMode):
// 50k ranks hold ~94% of the Zipf(1) mass over 100k (20k: ~87%; measured with both in docs/q1-hot-products.md).
// A list (BENCH_HOT_PREWARM=0,20000,50000) is a sweep: the capped `off` baseline, then one capped l1l2 mode per
// pre-warm size (l1l2_prewarm<N>), each with its gain over `off` and its hit ratio: the curve in the docs.
const PREWARMS = String(env.BENCH_HOT_PREWARM ?? 50000).split(',').map(Number);
if (PREWARMS.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`BENCH_HOT_PREWARM takes product counts ≥ 0 (one, or a comma-separated sweep), got '${env.BENCH_HOT_PREWARM}'`);
const PREWARM = PREWARMS[0];
const SWEEP = PREWARMS.length > 1;
// A database account used by the API processes only: the server counts its SELECTs for us.
const BENCH_USER = 'bench_hot';
const BENCH_PASS = 'bench-hot-pass';
const RUN = String(Date.now());

/** A mode of this scenario: the runner's ModeDef plus what its own hooks read. */
type HotMode = ModeDef & {
  /** Products to read once before the timed warm-up (default PREWARM). */
  prewarm?: number;
  /** The database account the API connects as (its SELECTs are counted; default BENCH_USER). */
  dbUser?: string;
  /** A private Varnish in front of the API (front()), keeping product reads edgeTtlS seconds. */
  edge?: boolean;
  edgeTtlS?: number;
  /** After the load: the cold stampede and the stampede after a write. */
  stampede?: boolean;
};
interface HotData {
  admin: { email: string; password: string };
  stampedeNext: number;
}

const api = (mode: string, cpu: number | null) => ({
  target: 'api' as const,
  dbCpu: cpu,
  env: {
    CACHE_MODE: mode,
    // A fresh key space per mode and run: every mode starts cold and is measured after its warm-up.
    CACHE_PREFIX: `bench-hot-${RUN}-${mode}-${cpu ? 'c' : 'u'}:`,
    DB_PRIMARY_URL: withUser(PRIMARY, BENCH_USER, BENCH_PASS),
    DB_REPLICA_URLS: '',
    REPLICA_MONITOR_INTERVAL_MS: '60000',
    LOG_LEVEL: 'error',
  } as Record<string, string>,
});

function withUser(url: string, user: string, pass: string) {
  const u = new URL(url);
  u.username = user;
  u.password = pass;
  return u.toString();
}

// SELECTs executed by the API's account, counted by the server: MariaDB userstat, MySQL performance_schema.
async function selectsByBenchUser(conn: SqlConnection, user = BENCH_USER): Promise<number> {
  try {
    await conn.query('SET GLOBAL userstat = 1');
    const [rows] = await conn.query('SELECT SELECT_COMMANDS AS n FROM information_schema.USER_STATISTICS WHERE USER = ?', [user]);
    return Number(rows[0]?.n ?? 0);
  } catch {
    const [rows] = await conn.query(
      "SELECT COALESCE(SUM(COUNT_STAR), 0) AS n FROM performance_schema.events_statements_summary_by_user_by_event_name WHERE USER = ? AND EVENT_NAME = 'statement/sql/select'",
      [user],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

// Other benchmark runs on this box (their runner processes, from /proc): on the shared stack they cap and
// uncap the same database nodes and may read through the same bench account, so a mode they overlap is noted.
function otherBenches(): number | null {
  let n = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (/dist\/load-tests\/runner\/(bench|profile)\.js/.test(cmd)) n++;
    }
  } catch {
    return null; // no /proc
  }
  return n;
}

type CacheCounts = Record<'l1' | 'l2' | 'miss' | 'bypass' | 'resyncs' | 'rss', number>;

// Cache counters of the (first) API process from /metrics: hits per tier, misses, Redis bypasses.
async function cacheMetrics(baseUrl: string): Promise<CacheCounts> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const sum = (re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  return {
    l1: sum(/^cache_hits_total\{[^}]*cache="product"[^}]*tier="l1"/),
    l2: sum(/^cache_hits_total\{[^}]*cache="product"[^}]*tier="l2"/),
    miss: sum(/^cache_misses_total\{[^}]*cache="product"/),
    bypass: sum(/^cache_redis_bypass_total/),
    // A Redis restart (another run's failover test, say) empties L2 and, through the bus's resync, L1.
    resyncs: sum(/^cache_l1_resyncs_total/) + sum(/^cache_bus_silences_total/),
    // prom-client's default process metric: what L1's bounds cost in memory, measured.
    rss: sum(/^process_resident_memory_bytes /),
  };
}

// The p99 of each tier that answered (X-Cache, split by the runner: Scenario.latencyBy) and of all responses
// through the same computation: a capped database's misses are a latency bare Fastify never has.
function tierLatency(result: ModeResult | undefined) {
  const by = result?.latencyBy ?? {};
  const out: Record<string, number> = {};
  for (const [k, name] of [['all', 'all'], ['l1', 'l1'], ['l2', 'l2'], ['db', 'db']]) if (by[k]) out[`p99_${name}_ms`] = by[k].p99_ms;
  return out;
}

// ---------------------------------------------------------------- EDGE AND PEER
// `edge`: the l1l2 API behind a private Varnish (docker/varnish/mallscale.vcl, started through docker/local/stack.mjs
// on BENCH_EDGE_PORT, default 16081, never the stack's 6081); the API purges it through EdgePurger. After the load:
// the edge's hit ratio (varnishstat), the Age of the copies it serves (a sample of Zipf reads) and, for the five
// hottest products, the time from a PATCH's answer to the first fresh read through the edge.
// `nest_cache_manager`: THE PEER BASELINE, benchmark only: BENCH_PEER_CACHE=nest-cache-manager loads
// apps/shop-api/src/bench/nest-cache-manager.module.ts (CacheInterceptor, Keyv on redis-cache, the same TTL as our
// L2) with our cache off. `*_x2`: the same over two instances (round-robin), connected as their own database account,
// plus after the load, per key of BENCH_STAMPEDE_KEYS (5) products nobody read: BENCH_STAMPEDE_REQUESTS (500)
// concurrent cold reads split over both instances, the server's SELECT count for them, then a PATCH of that product
// and the same stampede again: its SELECTs and the share of answers that still show the old price.
const EDGE_PORT = Number(env.BENCH_EDGE_PORT || 16081);
const BARE = ['bare', 'bare_again'];
const STAMPEDE_KEYS = Number(env.BENCH_STAMPEDE_KEYS || 5);
const STAMPEDE_REQUESTS = Number(env.BENCH_STAMPEDE_REQUESTS || 500);
const STAMPEDE_BASE = BASE + N; // products STAMPEDE_BASE+1 .. +100: outside the Zipf range, never read by the load
const STAMPEDE_POOL = 100;
const STAMPEDE_USER = 'bench_stampede';
const mode17 = (name: string, cacheMode: string, extraEnv: Record<string, string> = {}, dbUser = BENCH_USER, cpu: number | null = CPU): HotMode => {
  const d = api(cacheMode, cpu);
  return { ...d, dbUser, env: { ...d.env, CACHE_PREFIX: `bench-hot-${RUN}-${name}:`, SHORTS_SWEEP_INTERVAL_MS: '0', ...(dbUser === BENCH_USER ? {} : { DB_PRIMARY_URL: withUser(PRIMARY, dbUser, BENCH_PASS) }), ...extraEnv } };
};
const PEER = { BENCH_PEER_CACHE: 'nest-cache-manager' };
const EDGE_URL_ENV = { EDGE_PURGE_URLS: `http://127.0.0.1:${EDGE_PORT}` };
const EDGE_AND_PEER_MODES: Record<string, HotMode> = {
  // Capped (the database at 0.1 CPU, like l1l2): what each tier does for the one server.
  edge: { ...mode17('edge', 'l1l2', EDGE_URL_ENV), edge: true, edgeTtlS: 10 },
  nest_cache_manager: mode17('nest_cache_manager', 'off', PEER),
  // Uncapped (like l1l2_uncapped): what each tier's own path costs when the database is not the limit.
  edge_uncapped: { ...mode17('edge_uncapped', 'l1l2', EDGE_URL_ENV, BENCH_USER, null), edge: true, edgeTtlS: 10 },
  // The same edge keeping product reads 60 s: more hits, and a 6x larger budget for a lost purge.
  edge_ttl60_uncapped: { ...mode17('edge_ttl60_uncapped', 'l1l2', EDGE_URL_ENV, BENCH_USER, null), edge: true, edgeTtlS: 60 },
  nest_cache_manager_uncapped: mode17('nest_cache_manager_uncapped', 'off', PEER, BENCH_USER, null),
  // Two instances, for the stampedes (no pre-warm: their load numbers are a cold start, not a tier comparison).
  l1l2_x2: { ...mode17('l1l2_x2', 'l1l2', {}, STAMPEDE_USER), instances: 2, stampede: true, prewarm: 0 },
  nest_cache_manager_x2: { ...mode17('nest_cache_manager_x2', 'off', PEER, STAMPEDE_USER), instances: 2, stampede: true, prewarm: 0 },
};
const EDGE_AND_PEER_RATIOS = {
  edge_vs_l1l2: ['edge', 'l1l2'],
  edge_vs_bare: ['edge', ['bare', 'bare_again']],
  l1l2_vs_nest_cache_manager: ['l1l2', 'nest_cache_manager'],
  nest_cache_manager_vs_l1l2_p99: ['nest_cache_manager', 'l1l2', 'p99_ms'],
  edge_vs_l1l2_uncapped: ['edge_uncapped', 'l1l2_uncapped'],
  edge_ttl60_vs_l1l2_uncapped: ['edge_ttl60_uncapped', 'l1l2_uncapped'],
  l1l2_vs_nest_cache_manager_uncapped: ['l1l2_uncapped', 'nest_cache_manager_uncapped'],
} satisfies NonNullable<Scenario['ratios']>;

// The stampede account and products, and an admin for the writes: a fresh e-mail and random password per run,
// deleted when the run ends (nothing known to anybody is left behind in the database).
async function edgeAndPeerSetup(ctx: BenchContext, conn: SqlConnection, db: string, categoryId: unknown): Promise<HotData> {
  await conn.query(`CREATE USER IF NOT EXISTS '${STAMPEDE_USER}'@'%' IDENTIFIED BY '${BENCH_PASS}'`);
  await conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${db}\`.* TO '${STAMPEDE_USER}'@'%'`);
  const rows = Array.from({ length: STAMPEDE_POOL }, (_, k) => [STAMPEDE_BASE + 1 + k, categoryId, `Stampede product ${k}`, 5000, 100, '{}']);
  await conn.query('INSERT IGNORE INTO products (id, category_id, name, price_cents, stock, attributes) VALUES ?', [rows]);
  const admin = { email: `bench-hot-admin-${RUN}@bench.mallscale`, password: randomBytes(18).toString('hex') };
  await conn.query("INSERT INTO users (email, password_hash, role) VALUES (?, ?, 'admin')", [admin.email, await hash(admin.password)]);
  ctx.onCleanup(async () => {
    const c = await connect(PRIMARY);
    try {
      await c.query('DELETE FROM users WHERE email = ?', [admin.email]);
    } finally {
      await c.end();
    }
  });
  return { admin, stampedeNext: 0 };
}

async function adminToken(baseUrl: string, admin: HotData['admin']): Promise<string> {
  const res = await fetch(`${baseUrl}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admin) });
  if (res.status !== 200) throw new Error(`bench admin sign-in answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

async function patchPrice(baseUrl: string, token: string, id: string, priceCents: number) {
  const res = await fetch(`${baseUrl}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ priceCents }) });
  if (res.status !== 200) throw new Error(`PATCH /products/${id} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

let benchEdge: { url: string; dir: string } | null = null;
async function startBenchEdge(ctx: BenchContext, backendUrl: string, ttlS: number | undefined) {
  const stack = await launcher();
  const dir = mkdtempSync(`${tmpdir()}/mallscale-bench-edge-`);
  const e = await stack.startEdge({ port: EDGE_PORT, backend: new URL(backendUrl).host, dir, memory: '256m', ttlS, graceS: 5 });
  // The cache process (the manager's child) does the work: its CPU joins the mode's row.
  let child: number | null = null;
  try {
    child = Number(readFileSync(`/proc/${e.pid}/task/${e.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || null;
  } catch {
    /* no /proc */
  }
  const pids: Record<string, number> = child ? { edge: child } : {};
  benchEdge = { ...e, dir };
  ctx.log(`edge: varnishd on ${e.url} in front of ${backendUrl}, product reads kept ${ttlS} s + 5 s grace`);
  return {
    urls: [e.url],
    pids,
    stop: async () => {
      await e.stop();
      rmSync(dir, { recursive: true, force: true });
      benchEdge = null;
    },
  };
}

type EdgeCounts = { hit: number; miss: number };

/** varnishstat's hit/miss counters of the bench edge. */
function edgeCounters(): EdgeCounts {
  const out = JSON.parse(execFileSync('varnishstat', ['-n', `${benchEdge!.dir}/work`, '-1', '-j', '-f', 'MAIN.cache_hit', '-f', 'MAIN.cache_miss', '-f', 'MAIN.cache_hitpass', '-f', 'MAIN.cache_hitmiss'], { encoding: 'utf8' }));
  const c = out.counters ?? out;
  const v = (k: string) => Number(c[k]?.value ?? 0);
  return { hit: v('MAIN.cache_hit'), miss: v('MAIN.cache_miss') + v('MAIN.cache_hitpass') + v('MAIN.cache_hitmiss') };
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length ? a[Math.floor(a.length / 2)] : 0;
};
const round1 = (x: number) => Math.round(x * 10) / 10;

async function edgeAndPeerAfterMeasure(ctx: BenchContext, def: HotMode, data: HotData, state: ApiState, durationS: number, result: ModeResult | undefined) {
  const out: Record<string, number> = {};
  // CPU each request cost the API processes (and the edge): what an edge in front takes off the API.
  const cpuUs = (keys: string[]) => {
    const cores = keys.reduce((sum, k) => sum + (result?.cpu?.[k] ?? NaN), 0);
    return Number.isFinite(cores) && result?.requests ? Math.round((cores * durationS * 1e6) / result.requests) : undefined;
  };
  const apiKeys = Object.keys(result?.cpu ?? {}).filter((k) => k.startsWith('api-'));
  // JSON drops an undefined number, as the plain scenario's result files always did.
  if (apiKeys.length) out.api_cpu_us_per_req = cpuUs(apiKeys) as number;
  if (def.edge && result?.cpu?.edge != null) out.edge_cpu_us_per_req = cpuUs(['edge']) as number;
  if (def.edge) {
    const after = edgeCounters();
    const hit = after.hit - state.edge!.hit;
    const miss = after.miss - state.edge!.miss;
    out.edge_hit_pct = round1((hit / (hit + miss || 1)) * 100);
    Object.assign(out, await edgeStaleness(ctx, data));
  }
  if (def.stampede) Object.assign(out, await stampedes(ctx, def, data, state.conn));
  return out;
}

// What the edge costs in freshness: the Age of the copies it serves (2,000 Zipf reads right after the load),
// and write → fresh: PATCH one of the 5 hottest products, then read through the edge until the new price shows.
async function edgeStaleness(ctx: BenchContext, data: HotData) {
  const edgeUrl = benchEdge!.url;
  const ages: number[] = [];
  let u = 12345;
  const rand = () => (u = (u * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 2000; i += 16) {
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        const r = await fetch(`${edgeUrl}/products/${productId(zipfRank(rand()))}`);
        await r.arrayBuffer();
        ages.push(Number(r.headers.get('age') ?? 0));
      }),
    );
  }
  const token = await adminToken(ctx.baseUrl!, data.admin);
  const fresh: number[] = [];
  for (let rank = 0; rank < 5; rank++) {
    const id = productId(rank);
    for (let k = 0; k < 2; k++) await (await fetch(`${edgeUrl}/products/${id}`)).arrayBuffer(); // cached at the edge
    const price = 1000 + Math.floor(Math.random() * 9000);
    await patchPrice(ctx.baseUrl!, token, id, price);
    const t0 = performance.now();
    for (;;) {
      const body = (await (await fetch(`${edgeUrl}/products/${id}`)).json()) as { priceCents?: number };
      if (body.priceCents === price) break;
      if (performance.now() - t0 > 30_000) throw new Error(`edge still served the old price of ${id} 30 s after the write`);
      await new Promise((r) => setTimeout(r, 2));
    }
    fresh.push(performance.now() - t0);
  }
  const purgeFailures = await (async () => {
    const text = await (await fetch(`${ctx.baseUrl}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith('edge_purge_failures_total')).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  })();
  return {
    edge_age_p50_s: median(ages),
    edge_age_max_s: Math.max(...ages),
    edge_write_to_fresh_ms_median: round1(median(fresh)),
    edge_write_to_fresh_ms_max: round1(Math.max(...fresh)),
    edge_purge_failures: purgeFailures,
  };
}

// The account's SELECT counter once it has stopped moving: requests the capped database still had queued when
// the load ended finish first, so a stampede counts its own loads only.
async function quiet(conn: SqlConnection, user: string | undefined) {
  let last = await selectsByBenchUser(conn, user);
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 300));
    const n = await selectsByBenchUser(conn, user);
    if (n === last) return n;
    last = n;
  }
  throw new Error(`the SELECT counter of ${user} did not settle within 30 s (something else reads as this account)`);
}

// The cold stampede and the stampede right after a write, over both instances, counted on the server.
async function stampedes(ctx: BenchContext, def: HotMode, data: HotData, conn: SqlConnection) {
  const urls = ctx.urls!;
  const token = await adminToken(urls[0], data.admin);
  const cold: number[] = [];
  const afterWrite: number[] = [];
  let stale = 0;
  let answers = 0;
  let errors = 0;
  const burst = async (id: string) => {
    const before = await quiet(conn, def.dbUser);
    const res = await Promise.all(
      Array.from({ length: STAMPEDE_REQUESTS }, async (_, i) => {
        const r = await fetch(`${urls[i % urls.length]}/products/${id}`);
        return { status: r.status, body: r.status === 200 ? ((await r.json()) as { priceCents?: number }) : (await r.arrayBuffer(), null) };
      }),
    );
    const loads = (await selectsByBenchUser(conn, def.dbUser)) - before;
    errors += res.filter((r) => r.status !== 200).length;
    return { loads, prices: res.map((r) => r.body?.priceCents) };
  };
  for (let k = 0; k < STAMPEDE_KEYS; k++) {
    const id = String(STAMPEDE_BASE + 1 + (data.stampedeNext++ % STAMPEDE_POOL));
    cold.push((await burst(id)).loads);
    const price = 5000 + Math.floor(Math.random() * 4000) + 1;
    await patchPrice(urls[0], token, id, price);
    const w = await burst(id);
    afterWrite.push(w.loads);
    answers += w.prices.length;
    stale += w.prices.filter((p) => p !== price).length;
  }
  ctx.log(`stampedes (${STAMPEDE_REQUESTS} requests over ${urls.length} instances): cold loads ${cold.join(',')}; after a write ${afterWrite.join(',')}, ${stale}/${answers} answers stale`);
  return {
    stampede_db_loads_median: median(cold),
    stampede_db_loads_max: Math.max(...cold),
    stampede_after_write_db_loads_max: Math.max(...afterWrite),
    stampede_after_write_stale_pct: round1((stale / (answers || 1)) * 100),
    stampede_errors: errors,
  };
}

const MODES: Record<string, HotMode> = SWEEP
  ? {
      off: { ...api('off', CPU), boundBy: ['primary'] },
      ...Object.fromEntries(PREWARMS.map((p) => [`l1l2_prewarm${p}`, { ...api('l1l2', CPU), prewarm: p }])),
    }
  : {
      bare: { target: 'bare' },
      // Cache off, capped: the primary must be the bottleneck, or l1l2_vs_off measures something else.
      off: { ...api('off', CPU), boundBy: ['primary'] },
      l2: api('l2', CPU),
      l1l2: api('l1l2', CPU),
      off_uncapped: api('off', null),
      l1l2_uncapped: api('l1l2', null),
      // The L1 bounds before they were raised (10k entries, 5 s): what the larger, longer-lived L1 buys, same run.
      l1l2_small_l1: { ...api('l1l2', CPU), env: { ...api('l1l2', CPU).env, CACHE_PREFIX: `bench-hot-${RUN}-l1l2-small-l1:`, CACHE_L1_MAX_ENTRIES: '10000', CACHE_L1_MAX_BYTES: String(32 * 1024 * 1024), CACHE_L1_TTL_MS: '5000' } },
      ...EDGE_AND_PEER_MODES,
      // The ceiling measured again, after the others: on a shared box the load moves between modes of one run.
      bare_again: { target: 'bare' },
    };

/** What beforeMeasure hands afterMeasure: bare modes note other runs only; API modes count around the window. */
type BareState = { bare: true; others: number | null };
interface ApiState {
  bare?: false;
  conn: SqlConnection;
  user: string;
  stack: Stack;
  others: number | null;
  throttle: Throttle | null;
  before: number;
  metrics: CacheCounts;
  edge: EdgeCounts | null;
}

export default {
  ...http,
  description: `GET /products/:id, ${N} products, Zipf(s=1) popularity, one database server (DB nodes capped at ${CPU} CPU in the capped modes): cache off vs L2 vs L1+L2`,
  modes: MODES,
  schema: true,
  latencyBy: 'x-cache',
  ratios: SWEEP
    ? Object.fromEntries(PREWARMS.map((p): [string, [string, string]] => [`l1l2_prewarm${p}_vs_off`, [`l1l2_prewarm${p}`, 'off']]))
    : {
        l1l2_vs_off: ['l1l2', 'off'],
        l2_vs_off: ['l2', 'off'],
        l1l2_vs_off_uncapped: ['l1l2_uncapped', 'off_uncapped'],
        // bare Fastify is measured first and, with bare_again, last: the ceiling is the better of the two that ran.
        l1l2_vs_bare: ['l1l2', BARE],
        ...EDGE_AND_PEER_RATIOS,
        // A cached read near the HTTP ceiling, L1 worth more than L2, and the cached reads' tail.
        l1l2_vs_l2: ['l1l2', 'l2'],
        l1l2_vs_l1l2_small_l1: ['l1l2', 'l1l2_small_l1'],
        l1l2_uncapped_vs_bare: ['l1l2_uncapped', BARE],
        l1l2_p99_vs_bare: ['l1l2', BARE, 'p99_ms'],
        // The same tail without the reads a capped database answered: L1 hits only, against all of bare's reads.
        l1l2_l1_p99_vs_bare: ['l1l2', BARE, 'p99_l1_ms', 'p99_all_ms'],
      },
  goals: SWEEP ? undefined : { l1l2_vs_bare: ['>=', 0.75], l1l2_vs_l2: ['>', 1], l1l2_vs_off_uncapped: ['>=', 3], l1l2_p99_vs_bare: ['<=', 2] },
  // Node runner only: the bench account, the category and N products (bulk, idempotent).
  async setup(ctx) {
    const conn = untyped(await connect(PRIMARY));
    try {
      const db = new URL(PRIMARY).pathname.slice(1);
      await conn.query(`CREATE USER IF NOT EXISTS '${BENCH_USER}'@'%' IDENTIFIED BY '${BENCH_PASS}'`);
      await conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${db}\`.* TO '${BENCH_USER}'@'%'`);
      await conn.query("INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('bench-hot', 'Hot products benchmark', '{\"type\":\"object\"}')");
      const [[cat]] = await conn.query("SELECT id FROM categories WHERE code = 'bench-hot'");
      const [[{ n }]] = await conn.query('SELECT COUNT(*) AS n FROM products WHERE id BETWEEN ? AND ?', [BASE + 1, BASE + N]);
      if (Number(n) < N) {
        ctx.log(`seeding ${N - Number(n)} products into bench-hot (ids ${BASE + 1}..${BASE + N})`);
        const description = 'A popular product of the hot-products benchmark. '.repeat(8);
        for (let i = 0; i < N; i += 5000) {
          const rows = [];
          for (let k = i; k < Math.min(N, i + 5000); k++) {
            rows.push([BASE + 1 + k, cat.id, `Hot product ${k}`, 1000 + (k % 9000), 100, JSON.stringify({ color: ['red', 'blue', 'green'][k % 3], sizeMm: 100 + (k % 50), description })]);
          }
          await conn.query('INSERT IGNORE INTO products (id, category_id, name, price_cents, stock, attributes) VALUES ?', [rows]);
          if ((i / 5000) % 5 === 4) ctx.log(`  ${Math.min(N, i + 5000)} / ${N}`);
        }
      } else {
        ctx.log(`reusing ${N} products in bench-hot`);
      }
      return await edgeAndPeerSetup(ctx, conn, db, cat.id);
    } finally {
      await conn.end();
    }
  },
  // Node runner only. Steady state of a cache over a long Zipf tail takes ~10^5 reads to reach; at the capped
  // database's ~10^2 misses/s the timed warm-up alone cannot get there. So the cached modes first read the
  // PREWARM most popular products once through the API (the real read-through path: lease, fill) with the
  // database cap lifted, then the cap returns and the runner's timed warm-up and measurement follow.
  async beforeMode(ctx, mode) {
    const def = MODES[mode];
    const prewarm = def.prewarm ?? PREWARM;
    if (def.target !== 'api' || (def.env?.CACHE_MODE === 'off' && !def.env.BENCH_PEER_CACHE) || prewarm <= 0) return;
    const stack = await launcher();
    if (def.dbCpu != null) await stack.setCpuCap('off');
    try {
      const t0 = Date.now();
      // Coldest first, hottest last: an L1 smaller than the pre-warm (an LRU) then ends up holding the head of
      // the curve, as it does in steady state, not the last-read tail.
      let next = prewarm - 1;
      const worker = async () => {
        while (next >= 0) {
          const res = await fetch(`${ctx.baseUrl}/products/${productId(next--)}`);
          await res.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      ctx.log(`mode ${mode}: pre-warmed the ${prewarm} most popular products in ${((Date.now() - t0) / 1000).toFixed(1)}s (database uncapped)`);
    } finally {
      if (def.dbCpu != null) await stack.setCpuCap(def.dbCpu);
    }
  },
  async beforeMeasure(ctx, mode): Promise<BareState | ApiState> {
    if (MODES[mode].target === 'bare') return { bare: true, others: otherBenches() };
    const conn = untyped(await connect(PRIMARY));
    const user = MODES[mode].dbUser ?? BENCH_USER;
    // The stack is shared: another run may cap the primary during a mode that asked for none. Its cgroup's
    // throttled CFS periods over the window tell (primary_throttled_pct > 0 in an uncapped mode = capped by someone else).
    const stack = await launcher();
    return {
      conn,
      user,
      stack,
      others: otherBenches(),
      throttle: stack.throttleStats(['primary']).primary,
      before: await selectsByBenchUser(conn, user),
      metrics: await cacheMetrics(ctx.baseUrl!),
      edge: MODES[mode].edge ? edgeCounters() : null,
    };
  },
  async afterMeasure(ctx, mode, data, state: BareState | ApiState | undefined, durationS, result) {
    if (!state) return;
    if (state.bare) {
      const others = otherBenches();
      return { ...(others === null ? {} : { other_benches: Math.max(others, state.others ?? 0) }), ...tierLatency(result) };
    }
    const def = MODES[mode];
    const after = await selectsByBenchUser(state.conn, state.user);
    const extra = await edgeAndPeerAfterMeasure(ctx, def, data, state, durationS, result);
    await state.conn.end();
    const t1 = state.stack.throttleStats(['primary']).primary;
    const m = await cacheMetrics(ctx.baseUrl!);
    const d = (k: keyof CacheCounts) => m[k] - state.metrics[k];
    const reads = d('l1') + d('l2') + d('miss') || 1;
    const out: Record<string, number> = { db_selects: after - state.before };
    const others = otherBenches();
    if (others !== null) out.other_benches = Math.max(others, state.others ?? 0);
    // No CFS period elapsed = no quota was in force on the primary during the window.
    if (state.throttle && t1) out.primary_throttled_pct = t1.periods > state.throttle.periods ? Math.round(((t1.throttled - state.throttle.throttled) / (t1.periods - state.throttle.periods)) * 1000) / 10 : 0;
    if (result && result.requests) out.db_selects_per_1k = Math.round(((after - state.before) / result.requests) * 1000 * 100) / 100;
    if (def.env?.CACHE_MODE !== 'off') {
      out.l1_hit_pct = Math.round((d('l1') / reads) * 1000) / 10;
      out.l2_hit_pct = Math.round((d('l2') / reads) * 1000) / 10;
      out.redis_bypasses = d('bypass');
      if (def.env?.CACHE_MODE === 'l1l2') out.l1_resyncs = d('resyncs');
    }
    out.rss_mb = Math.round(m.rss / 1048576);
    return { ...out, ...tierLatency(result), ...extra };
  },
  front(ctx, mode, urls) {
    return MODES[mode].edge ? startBenchEdge(ctx, urls[0], MODES[mode].edgeTtlS) : Promise.resolve(null);
  },
} satisfies Scenario<HotData>;

// `npm run demo -- q1` (scripts/demo.mjs): the short run at the top of docs/q1-hot-products.md. 20k products
// (all pre-warmed), the two headline modes, 3 s warm-up + 5 s each.
export const demo = {
  opts: { modes: 'off,l1l2', duration: '5s', warmup: '3s' },
  env: { BENCH_HOT_PRODUCTS: '20000', BENCH_HOT_PREWARM: '20000' },
  // Without a cgroup cpu controller: the same pair uncapped (the database is then not the bottleneck, so the gain is smaller).
  uncapped: { modes: 'off_uncapped,l1l2_uncapped' },
  headline(r) {
    const [on, off, ratio] = r.modes.l1l2 ? ['l1l2', 'off', 'l1l2_vs_off'] : ['l1l2_uncapped', 'off_uncapped', 'l1l2_vs_off_uncapped'];
    const a = r.modes[on];
    const b = r.modes[off];
    const value = r.ratios[ratio] != null ? `**${ratio} = ${r.ratios[ratio]}×**` : `${ratio} omitted (${r.ratiosOmitted?.[ratio] ?? 'not measured'})`;
    return `${value}: ${a.rps} vs ${b.rps} req/s; the database ran ${a.extra?.db_selects_per_1k ?? '–'} vs ${b.extra?.db_selects_per_1k ?? '–'} SELECTs per 1,000 requests (L1 hits ${a.extra?.l1_hit_pct ?? '–'} %). Without the cache the one capped database server is the bottleneck; with L1+L2 the hot products are answered from memory, the database is nearly idle, and the limit moves to the API process.`;
  },
} satisfies DemoPreset;
