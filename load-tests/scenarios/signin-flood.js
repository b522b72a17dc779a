// Scenario `signin-flood` (docs/security.md): does a sign-in flood slow everybody else down? Every sign-in
// costs an argon2 hash; 1,000 of them at once could starve the other routes of CPU. Load: GET
// /products/:id and GET /health/live (half each, autocannon). Modes: `baseline` (that load alone), `flood`
// (the same load while 1,000 sign-ins with wrong passwords over 1,000 unknown e-mails — credential
// stuffing from one address — are fired concurrently, from a separate process so the load generator's
// own event loop is not what is measured), and `flood-no-limit` (the same with RATE_LIMIT=off: what the
// limiter buys). Per flood mode: the flood's status counts and duration, and the box's 1-minute load.
// Goal: flood_p99_vs_baseline ≤ 2. 127.0.0.1 only; bounded: 1,000 sign-ins per flood mode, ~3 × 8 s.
// Plain ESM without imports: read by the in-repo runner (npm run bench -- signin-flood).
const env = typeof process !== 'undefined' ? process.env : typeof __ENV !== 'undefined' ? __ENV : {};
const LOCAL = (port) => `mysql://mallscale:mallscale@127.0.0.1:${port}/mallscale`;
const PRIMARY = env.DB_PRIMARY_URL || LOCAL(3307);
const PRODUCTS = 500;
const FLOOD = Number(env.BENCH_FLOOD_REQUESTS || 1000);
const FLOOD_CONCURRENCY = Number(env.BENCH_FLOOD_CONCURRENCY || FLOOD);
// A fresh counter space per mode and run: a previous run's counters must not decide this one's 429s.
const RUN = String(Date.now());
const api = (mode, extra = {}) => ({ target: 'api', env: { RATE_LIMIT_PREFIX: `bench-flood-${RUN}-${mode}:`, LOG_LEVEL: 'error', ...extra } });

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

async function connect(ctx, url) {
  const mysql = await ctx.load('mysql2/promise');
  const u = new URL(url);
  return mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) });
}

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
  async setup(ctx) {
    const conn = await connect(ctx, PRIMARY);
    try {
      await conn.query("INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('bench-signin-flood', 'Sign-in flood benchmark', '{\"type\":\"object\"}')");
      const [[cat]] = await conn.query("SELECT id FROM categories WHERE code = 'bench-signin-flood'");
      const [[{ n }]] = await conn.query('SELECT COUNT(*) AS n FROM products WHERE category_id = ?', [cat.id]);
      if (Number(n) < PRODUCTS) {
        const rows = Array.from({ length: PRODUCTS - Number(n) }, (_, k) => [cat.id, `Sign-in flood bench product ${Number(n) + k}`, 1000 + k, 100, JSON.stringify({ color: 'blue' })]);
        await conn.query('INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES ?', [rows]);
      }
      const [ids] = await conn.query('SELECT id FROM products WHERE category_id = ? ORDER BY id LIMIT ?', [cat.id, PRODUCTS]);
      return { ids: ids.map((r) => String(r.id)) };
    } finally {
      await conn.end();
    }
  },
  async beforeMeasure(ctx, mode) {
    if (!mode.startsWith('flood')) return null;
    const { spawn } = await ctx.load('node:child_process');
    const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOD_SCRIPT], {
      env: { ...process.env, FLOOD_URL: ctx.baseUrl, FLOOD_TAG: `${RUN}-${mode}`, FLOOD_N: String(FLOOD), FLOOD_CONCURRENCY: String(FLOOD_CONCURRENCY) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise((resolve) => child.once('exit', () => resolve(out)));
    return { child, done };
  },
  async afterMeasure(ctx, _mode, _data, state) {
    const { loadavg } = await ctx.load('node:os');
    const extra = { loadavg_1m: Math.round(loadavg()[0] * 10) / 10 };
    if (!state) return extra;
    // The flood is bounded; still, never wait forever for it (the target is stopped right after).
    const timer = setTimeout(() => state.child.kill('SIGKILL'), 120000);
    const out = await state.done;
    clearTimeout(timer);
    const { counts = {}, ms = -1 } = out ? JSON.parse(out) : {};
    return { ...extra, flood_ms: ms, flood_401: counts['401'] || 0, flood_429: counts['429'] || 0, flood_other: FLOOD - (counts['401'] || 0) - (counts['429'] || 0) };
  },
  request(rand, data) {
    if (rand() < 0.5) return { method: 'GET', path: '/health/live' };
    const ids = data && data.ids && data.ids.length ? data.ids : ['1'];
    return { method: 'GET', path: `/products/${ids[Math.floor(rand() * ids.length)]}` };
  },
};
