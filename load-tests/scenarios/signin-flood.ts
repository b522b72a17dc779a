// Scenario `signin-flood` (docs/security.md): does a sign-in flood slow everybody else down? Every sign-in
// costs an argon2 hash; 1,000 of them at once could starve the other routes of CPU. Load: GET
// /products/:id and GET /health/live (half each, autocannon). Modes: `baseline` (that load alone), `flood`
// (the same load while 1,000 sign-ins with wrong passwords over 1,000 unknown e-mails — credential
// stuffing from one address — are fired concurrently, from a separate process so the load generator's
// own event loop is not what is measured), and `flood-no-limit` (the same with RATE_LIMIT=off: what the
// limiter buys). Per flood mode: the flood's status counts and duration, and the box's 1-minute load.
// Goal: flood_p99_vs_baseline ≤ 2. 127.0.0.1 only; bounded: 1,000 sign-ins per flood mode, ~3 × 8 s.
import { spawn, type ChildProcess } from 'node:child_process';
import type { ModeDef, Scenario } from '../runner/bench.js';
import { connect, ensureBenchProducts, loadavg1m, localAdminUrl } from './support.js';

const env = process.env;
const PRIMARY = env.DB_PRIMARY_URL || localAdminUrl(3307);
const PRODUCTS = 500;
const FLOOD = Number(env.BENCH_FLOOD_REQUESTS || 1000);
const FLOOD_CONCURRENCY = Number(env.BENCH_FLOOD_CONCURRENCY || FLOOD);
// A fresh counter space per mode and run: a previous run's counters must not decide this one's 429s.
const RUN = String(Date.now());
const api = (mode: string, extra: Record<string, string> = {}): ModeDef => ({ target: 'api', env: { RATE_LIMIT_PREFIX: `bench-flood-${RUN}-${mode}:`, LOG_LEVEL: 'error', ...extra } });

// The flood client: a child process with fetch, printing {counts, ms} as JSON when all requests are answered.
const FLOOD_SCRIPT = `
const { FLOOD_URL: url, FLOOD_TAG: tag } = process.env;
const n = Number(process.env.FLOOD_N), c = Number(process.env.FLOOD_CONCURRENCY);
const counts = {};
let next = 0;
const t0 = performance.now();
async function one(i) {
  try {
    const r = await fetch(url + '/auth/sign-in', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'flood-' + tag + '-' + i + '@bench.mallscale', password: 'wrong-password-' + i }) });
    await r.arrayBuffer();
    counts[r.status] = (counts[r.status] || 0) + 1;
  } catch {
    counts.error = (counts.error || 0) + 1;
  }
}
async function worker() { while (next < n) await one(next++); }
await Promise.all(Array.from({ length: Math.min(c, n) }, worker));
process.stdout.write(JSON.stringify({ counts, ms: Math.round(performance.now() - t0) }));
`;

export default {
  name: 'signin-flood',
  description: `GET /products/:id + /health/live p99, alone vs during ${FLOOD} concurrent wrong-password sign-ins from one address (rate limit on / off)`,
  duration: '5s',
  warmup: '3s',
  connections: 32,
  modes: {
    baseline: api('baseline'),
    flood: api('flood'),
    'flood-no-limit': api('flood-no-limit', { RATE_LIMIT: 'off' }),
  },
  ratios: {
    flood_p99_vs_baseline: ['flood', 'baseline', 'p99_ms'],
    flood_no_limit_p99_vs_baseline: ['flood-no-limit', 'baseline', 'p99_ms'],
    flood_rps_vs_baseline: ['flood', 'baseline'],
  },
  async setup() {
    const conn = await connect(PRIMARY);
    try {
      return { ids: await ensureBenchProducts(conn, 'bench-signin-flood', 'Sign-in flood benchmark', PRODUCTS, (i) => ({ priceCents: 1000 + i, attributes: { color: 'blue' } })) };
    } finally {
      await conn.end();
    }
  },
  async beforeMeasure(ctx, mode) {
    if (!mode.startsWith('flood')) return null;
    const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOD_SCRIPT], {
      env: { ...process.env, FLOOD_URL: ctx.baseUrl, FLOOD_TAG: `${RUN}-${mode}`, FLOOD_N: String(FLOOD), FLOOD_CONCURRENCY: String(FLOOD_CONCURRENCY) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise<string>((resolve) => child.once('exit', () => resolve(out)));
    return { child, done };
  },
  async afterMeasure(_ctx, _mode, _data, state: { child: ChildProcess; done: Promise<string> } | null) {
    const extra = { loadavg_1m: loadavg1m() };
    if (!state) return extra;
    // The flood is bounded; still, never wait forever for it (the target is stopped right after).
    const timer = setTimeout(() => state.child.kill('SIGKILL'), 120000);
    const out = await state.done;
    clearTimeout(timer);
    const { counts = {}, ms = -1 }: { counts?: Record<string, number>; ms?: number } = out ? JSON.parse(out) : {};
    return { ...extra, flood_ms: ms, flood_401: counts['401'] || 0, flood_429: counts['429'] || 0, flood_other: FLOOD - (counts['401'] || 0) - (counts['429'] || 0) };
  },
  request(rand, data) {
    if (rand() < 0.5) return { method: 'GET', path: '/health/live' };
    const ids = data && data.ids && data.ids.length ? data.ids : ['1'];
    return { method: 'GET', path: `/products/${ids[Math.floor(rand() * ids.length)]}` };
  },
} satisfies Scenario<{ ids: string[] }>;
