// Scenario `reshard`: POST /orders before, during and after an online move of a third of the buckets from
// 2 shards to 3. The three order shards are CPU-capped equally so the shards, not this box, bound the writes;
// the catalog primary is not capped (it would cap every mode alike). The cap is calibrated: a short uncapped
// probe of the same writes measures a shard's CPU per write, and the cap makes one shard worth
// BENCH_RESHARD_TARGET_WPS writes/s (--target-wps, default 40; floor --min-cap 0.05 CPU; --cap N fixes it
// instead). A cap where one write takes hundreds of ms (0.05 CPU on a fast box) measures the throttle, not the
// cut-over: every statement of the pause then queues behind it.
// Two shop-api instances take the load, one with its bucket map cached for an hour (only the fences tell it
// that buckets moved). The move is `npm run shards -- rebalance --to-shards 3` in a process of its own, as an
// operator runs it: 341 buckets to shard-2, chunked keyset copy, catch-up, verify, fenced cut-over per bucket.
// Phases (one run, ratios between them): before (2 shards), during (the move), after (3 shards). Numbers:
// writes/s, p50/p99 and error rate per phase; the cut-over pause (freeze → target takes writes, per bucket,
// with its phases), and per write the time each write of a bucket spent inside its bucket's pause;
// rows copied per second; 0 lost orders checked.
// Own databases mallscale_bench_rs on the primary and the three shards (dropped and re-created each run).
// Node only (`run`). Options: --cap N|off (default: calibrated) --target-wps 40 --min-cap 0.05 --probe 4s
// --phase 10s --orders 30000 (seeded before the run) --connections 32.
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { loadConfig } from '#libs/core';
import { BucketMover, bucketOf, DbNodes, encodeOrderId, migrateAll, type CutoverPhases, type MoveResult } from '#libs/db';
import type { ModeResult, Scenario } from '../runner/bench.js';
import { launcher } from '../runner/launcher.js';
import { localAdminUrl, runOnly, stackPort as port } from './support.js';

const DB = 'mallscale_bench_rs';
const url = (p: number) => localAdminUrl(p, DB);
const SECRET = 'reshard-bench-secret-0123456789abcdef-xyz';
const USERS = 3000;
const PRODUCTS = 200;
const SHARDS = ['shard-0', 'shard-1', 'shard-2'];

/** One POST /orders of the load: when it started (wall clock), how long it took, its status (-1: no answer), its user, its instance (1: the stale map). */
interface Write { t0: number; ms: number; status: number; user: number; api: number }
type Phase = 'before' | 'during' | 'after';
/** A phase as a mode of the result file; p50/p99 NaN (written as null) when no write was answered in it. */
type PhaseResult = ModeResult & { extra: Record<string, number> };

function env(ttlMs: number) {
  return {
    DB_PRIMARY_URL: url(port('PRIMARY', 3307)),
    DB_REPLICA_URLS: '',
    DB_SHARD_URLS: [url(port('SHARD_0', 3310)), url(port('SHARD_1', 3311)), url(port('SHARD_2', 3312))].join(','),
    JWT_SECRET: SECRET,
    PARTITION_MAINTENANCE_INTERVAL_S: '0',
    CACHE_PREFIX: 'bench-rs:',
    DB_POOL_SIZE: '32',
    SHARD_MAP_TTL_MS: String(ttlMs),
    SHARD_FENCE_RETRIES: '1000',
  };
}

const secs = (s: string) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(s));
  if (!m) throw new Error(`bad duration '${s}'`);
  return m[2] === 'ms' ? Number(m[1]) / 1000 : Number(m[1]);
};
const pct = (xs: number[], p: number) => {
  if (!xs.length) return null;
  const a = [...xs].sort((x, y) => x - y);
  return Math.round(a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] * 10) / 10;
};

export default {
  name: 'reshard',
  description: 'POST /orders before / during / after moving 341 of 1024 buckets from 2 shards to a third, online (shards capped)',
  ...runOnly,

  async run(ctx, opts) {
    const stack = await launcher();
    const fixedCap = opts.cap === undefined ? undefined : opts.cap === 'off' ? null : Number(opts.cap);
    const targetWps = Number(opts['target-wps'] ?? process.env.BENCH_RESHARD_TARGET_WPS ?? 40);
    const minCap = Number(opts['min-cap'] ?? 0.05);
    const probeS = secs(opts.probe ?? '4s');
    const phaseS = secs(opts.phase ?? '10s');
    const seedOrders = Number(opts.orders ?? 30000);
    const connections = Number(opts.connections ?? 32);

    // ---- topology: shard-2 up, fresh databases, all buckets on shards 0/1 (bucket % 2)
    await stack.addShard({ quiet: true });
    for (const p of [port('PRIMARY', 3307), port('SHARD_0', 3310), port('SHARD_1', 3311), port('SHARD_2', 3312)]) {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: p, user: 'mallscale', password: 'mallscale' });
      await c.query(`DROP DATABASE IF EXISTS ${DB}`);
      await c.end();
    }
    // The mover's process gets this environment too: its limits (RESHARD_*) named in the table are the ones it ran with.
    const config = loadConfig({ ...process.env, ...env(5000) });
    await migrateAll(config, () => undefined);
    const nodes = await DbNodes.connect({ ...config.db, poolSize: 6 });
    ctx.onCleanup(() => nodes.close());
    const cat = nodes.primary.ds;
    await cat.query('UPDATE shard_buckets SET shard = bucket % 2');
    await cat.query(`INSERT INTO categories (id, code, name, attribute_schema) VALUES (1, 'bench', 'Bench', '{"type":"object"}')`);
    await cat.query(`INSERT INTO products (id, category_id, name, price_cents, stock, attributes) VALUES ${Array.from({ length: PRODUCTS }, (_, i) => `(${i + 1}, 1, 'p${i + 1}', ${100 + i}, 1000000000, '{}')`).join(',')}`);
    for (let i = 0; i < USERS; i += 1000) {
      const rows = Array.from({ length: Math.min(1000, USERS - i) }, (_, k) => `(${i + k + 1}, 'bench-rs-${i + k + 1}@example.test', '!', 'user', 0)`);
      await cat.query(`INSERT INTO users (id, email, password_hash, role, token_version) VALUES ${rows.join(',')}`);
    }
    // Orders already there (the rows the move copies): spread over the last 60 days, one item each.
    const now = Date.now();
    const perShard: [string, number, number, Date, number, number][][] = [[], []];
    for (let i = 0; i < seedOrders; i++) {
      const user = 1 + (i % USERS);
      const bucket = bucketOf(user);
      const ts = now - 60_000 - Math.floor((i / seedOrders) * 60 * 86400_000);
      const id = encodeOrderId(ts, bucket, i % 4096).toString();
      perShard[bucket % 2].push([id, user, bucket, new Date(ts), 1 + (i % PRODUCTS), 100 + (i % PRODUCTS)]);
    }
    for (const [s, rows] of perShard.entries()) {
      for (let i = 0; i < rows.length; i += 2000) {
        const chunk = rows.slice(i, i + 2000);
        await nodes.shards[s].ds.query(`INSERT INTO orders (id, user_id, bucket, status, total_cents, item_count, created_at) VALUES ${chunk.map(() => "(?, ?, ?, 'placed', ?, 1, ?)").join(',')}`, chunk.flatMap((r) => [r[0], r[1], r[2], r[5], r[3]]));
        await nodes.shards[s].ds.query(`INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents, created_at) VALUES ${chunk.map(() => '(?, 1, ?, 1, ?, ?)').join(',')}`, chunk.flatMap((r) => [r[0], r[4], r[5], r[3]]));
      }
    }
    ctx.log(`reshard: ${USERS} users, ${PRODUCTS} products, ${seedOrders} orders seeded on shards 0/1; db ${DB}`);

    // ---- two API instances (one with its map cached for an hour), tokens minted as TokenService does
    const apiFresh = await ctx.startTarget!({ target: 'api', env: env(5000) });
    const apiStale = await ctx.startTarget!({ target: 'api', env: env(3_600_000) });
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const iat = Math.floor(Date.now() / 1000);
    const { issuer, audience } = config.auth;
    const tokens = Array.from({ length: USERS }, (_, i) => {
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(i + 1), typ: 'access', ver: 0, iat, exp: iat + 86400, iss: issuer, aud: audience })}`;
      return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
    });

    // ---- load: `connections` loops, alternating instances, every request timed (started here: the probe uses them)
    const log: Write[] = [];
    let stop = false;
    let idle = fixedCap === undefined; // the calibration first reads the shards' CPU with no load of ours
    const loops = Array.from({ length: connections }, async (_, w) => {
      const base = w % 2 ? apiStale.url : apiFresh.url;
      let r = w * 7919;
      while (!stop) {
        if (idle) {
          await new Promise((res) => setTimeout(res, 50));
          continue;
        }
        r = (r * 1103515245 + 12345) % 2147483648;
        const user = 1 + (r % USERS);
        const t0 = Date.now();
        const p0 = performance.now();
        let status = 0;
        try {
          const res = await fetch(`${base}/orders`, {
            method: 'POST',
            headers: { authorization: `Bearer ${tokens[user - 1]}`, 'idempotency-key': randomUUID(), 'content-type': 'application/json' },
            body: JSON.stringify({ items: [{ productId: String(1 + (r % PRODUCTS)), quantity: 1 }] }),
          });
          status = res.status;
          await res.arrayBuffer();
        } catch {
          status = -1;
        }
        log.push({ t0, ms: performance.now() - p0, status, user, api: w % 2 });
      }
    });
    ctx.onCleanup(() => (stop = true));
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

    // ---- calibration: the same writes, uncapped, for `probe` seconds; a shard's CPU per write sets the cap
    const cpuOf = (name: string) => {
      const pid = [...stack.nodes, ...stack.addedShards].find((n) => n.name === name)?.pid;
      if (!pid) return NaN;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // utime, stime: fields 14, 15 (clock ticks of 1/100 s)
      return (Number(f[11]) + Number(f[12])) / 100;
    };
    let cap: number | null = fixedCap ?? null;
    let calibration: { probeS: number; writes: number; uncappedWps: number; idleShardCores: number; cpuPerWriteUs: number; targetWps: number; minCap: number; cap: number } | null = null;
    if (fixedCap === undefined) {
      await stack.setCpuCap('off', SHARDS);
      // The shards are shared (other tests and runs on this box use them too): their CPU with none of our load
      // is read first and taken off, per second, from the CPU under our load.
      const shardCpu = () => cpuOf('shard-0') + cpuOf('shard-1');
      const i0 = shardCpu();
      const it0 = Date.now();
      await sleep(2000);
      const idleCoresUsed = (shardCpu() - i0) / ((Date.now() - it0) / 1000);
      idle = false;
      await sleep(1500); // warm-up
      const c0 = shardCpu();
      const t0 = Date.now();
      await sleep(probeS * 1000);
      const t1 = Date.now();
      const c1 = shardCpu();
      const writes = log.filter((l) => l.t0 >= t0 && l.t0 < t1 && l.status === 201).length;
      if (Number.isNaN(c0) || Number.isNaN(c1) || !writes) throw new Error('calibration: no CPU reading for shard-0/1 or no write answered');
      // Each write runs on one of the two shards: their CPU together over the writes is one shard's CPU per write.
      const cpuPerWriteS = Math.max(0, c1 - c0 - idleCoresUsed * ((t1 - t0) / 1000)) / writes;
      cap = Math.max(minCap, Math.round(targetWps * cpuPerWriteS * 1000) / 1000);
      calibration = { probeS, writes, uncappedWps: Math.round((writes / ((t1 - t0) / 1000)) * 10) / 10, idleShardCores: Math.round(idleCoresUsed * 1000) / 1000, cpuPerWriteUs: Math.round(cpuPerWriteS * 1e6), targetWps, minCap, cap };
      ctx.log(`calibration: ${calibration.uncappedWps} writes/s uncapped, ${calibration.cpuPerWriteUs} µs shard CPU per write; cap ${cap} CPU ≈ ${targetWps} writes/s per shard${cap === minCap ? ' (the floor)' : ''}`);
    }

    // ---- caps on the three shards (undone at the end, or on Ctrl-C)
    let capInfo: Pick<Awaited<ReturnType<typeof stack.setCpuCap>>, 'applied' | 'reason' | 'cpu' | 'mechanism'> = { applied: false, reason: 'uncapped run (--cap off)', cpu: null, mechanism: 'none' };
    if (cap != null) {
      ctx.onCleanup(() => stack.setCpuCap('off', SHARDS));
      capInfo = await stack.setCpuCap(cap, SHARDS);
      if (!capInfo.applied && opts['uncapped-ok'] !== 'true') throw new Error(`CPU caps not applied (${capInfo.reason}); rerun with --uncapped-ok to measure uncapped`);
    }

    const runShards = (args: string[]) =>
      new Promise<MoveResult>((resolve, reject) => {
        const child = spawn(process.execPath, [join(ctx.root, 'dist/tools/shards.js'), ...args], {
          cwd: ctx.root,
          env: { ...process.env, ...env(5000), RESHARD_CLEANUP_GRACE_S: '3600', LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => {
          const json = out.split('\n').filter((l) => l.startsWith('{')).pop();
          if (code === 0 && json) resolve(JSON.parse(json));
          else reject(new Error(`npm run shards -- ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
        });
      });
    // The catalog primary is left uncapped here, but the stack is shared: another run may cap it meanwhile (every
    // order reserves its stock there, and the map flip is there). Sampled through the run, and recorded.
    const primaryCaps = new Set<number | null>();
    const samplePrimaryCap = async () => {
      const row = (await stack.status().catch(() => [])).find((n) => n.role === 'primary');
      if (row) primaryCaps.add(row.cap ?? null);
    };
    const capSampler = setInterval(() => void samplePrimaryCap(), 5000);
    ctx.onCleanup(() => clearInterval(capSampler));
    await samplePrimaryCap();
    const marks = {} as Record<Phase, number[]>;
    let move: MoveResult;
    try {
      await sleep(3000); // warm-up, not measured
      marks.before = [Date.now()];
      await sleep(phaseS * 1000);
      marks.before.push(Date.now());
      // ---- the move: `npm run shards -- rebalance --to-shards 3`, the operator's tool in its own process (not in
      // this one, whose event loop runs the load); source rows are cleaned up after the run (grace period)
      marks.during = [Date.now()];
      move = await runShards(['rebalance', '--to-shards', '3', '--json']);
      marks.during.push(Date.now());
      ctx.log(`moved ${move.buckets.length} buckets, ${move.rowsCopied} rows in ${move.copySeconds.toFixed(1)} s`);
      marks.after = [Date.now()];
      await sleep(phaseS * 1000);
      marks.after.push(Date.now());
    } finally {
      stop = true;
      clearInterval(capSampler);
      await Promise.all(loops);
      if (cap != null) await stack.setCpuCap('off', SHARDS);
    }
    // Cleanup (uncapped, after the load): the moved buckets' rows leave their old shards.
    const c0 = performance.now();
    const cleaned = await new BucketMover(cat, nodes.shards, { chunkRows: config.resharding.chunkRows, throttleMs: 0, cleanupGraceSeconds: 0 }).cleanupDue();
    const cleanup = { buckets: cleaned.length, seconds: Math.round((performance.now() - c0) / 100) / 10 };

    // ---- correctness: every 201 is on exactly one shard, the one the map names; nothing lost
    const map = await new BucketMover(cat, nodes.shards, { chunkRows: 1, throttleMs: 0, cleanupGraceSeconds: 0 }).map();
    let stored = 0;
    let misplaced = 0;
    for (const [s, n] of nodes.shards.entries()) {
      for (const r of await n.ds.query('SELECT bucket, COUNT(*) AS n FROM orders GROUP BY bucket')) {
        stored += Number(r.n);
        if (map[Number(r.bucket)] !== s) misplaced += Number(r.n);
      }
    }
    const created = log.filter((l) => l.status === 201).length;
    const lost = seedOrders + created - stored;

    // ---- numbers per phase
    const phase = (name: Phase): PhaseResult => {
      const [a, b] = marks[name];
      const xs = log.filter((l) => l.t0 >= a && l.t0 < b);
      const ok = xs.filter((l) => l.status === 201);
      const lat = ok.map((l) => l.ms);
      return {
        rps: Math.round((ok.length / ((b - a) / 1000)) * 10) / 10,
        p50_ms: pct(lat, 50) ?? NaN,
        p99_ms: pct(lat, 99) ?? NaN,
        errors: xs.length - ok.length,
        requests: xs.length,
        extra: { error_pct: xs.length ? Math.round(((xs.length - ok.length) / xs.length) * 10000) / 100 : 0, seconds: Math.round((b - a) / 100) / 10 },
      };
    };
    const modes = { before: phase('before'), during: phase('during'), after: phase('after') };
    const pauses = move.buckets.map((b) => b.pauseMs ?? 0);
    const windows = new Map(move.buckets.filter((b) => b.cutoverFrom != null).map((b) => [b.bucket, [b.cutoverFrom!, b.cutoverTo!] as const]));
    const overlapped = log.filter((l) => {
      const w = windows.get(bucketOf(l.user));
      return w && l.t0 <= w[1] && l.t0 + l.ms >= w[0];
    });
    const overlappedMs = overlapped.map((l) => l.ms);
    // Per write: how much of its life fell inside its bucket's pause (what the cut-over held it up at most).
    const held = overlapped.map((l) => {
      const w = windows.get(bucketOf(l.user))!;
      return Math.max(0, Math.min(l.t0 + l.ms, w[1]) - Math.max(l.t0, w[0]));
    });
    modes.during.extra.writes_in_cutover = overlapped.length;
    modes.during.extra.cutover_write_held_p99_ms = pct(held, 99) ?? 0;
    modes.during.extra.cutover_write_held_max_ms = held.length ? Math.round(Math.max(...held)) : 0;
    modes.during.extra.cutover_write_p99_ms = pct(overlappedMs, 99) ?? 0;
    modes.during.extra.cutover_write_max_ms = overlappedMs.length ? Math.round(Math.max(...overlappedMs)) : 0;
    // Where each bucket's pause went (BucketMover's phases), p50 and p99 over the buckets cut over in this run.
    const phaseNames = ['freezeMs', 'checkMs', 'deltaMs', 'flipMs', 'ownMs', 'catchUpMs'] as const;
    const cut = move.buckets.flatMap((b) => (b.phases ? [b.phases] : []));
    const spread = (k: keyof CutoverPhases) => ({ p50: pct(cut.map((p) => p[k]), 50), p99: pct(cut.map((p) => p[k]), 99) });
    const phases = {
      ...(Object.fromEntries(phaseNames.map((k) => [k, spread(k)])) as Record<(typeof phaseNames)[number], ReturnType<typeof spread>>),
      freezeAttempts: { max: Math.max(0, ...cut.map((p) => p.freezeAttempts)), retried: cut.filter((p) => p.freezeAttempts > 1).length },
      deltaBuckets: cut.filter((p) => p.deltaMs > 0).length,
    };
    const ratios: Record<string, number> = {
      during_vs_before: Math.round((modes.during.rps / modes.before.rps) * 100) / 100,
      cutover_pause_p99_ms: pct(pauses, 99) ?? NaN,
      cutover_pause_max_ms: Math.max(...pauses),
      cutover_write_held_p99_ms: modes.during.extra.cutover_write_held_p99_ms,
      three_vs_two_shards: Math.round((modes.after.rps / modes.before.rps) * 100) / 100,
      rows_copied_per_s: Math.round(move.rowsPerSecond),
      orders_lost: lost,
      orders_misplaced: misplaced,
    };
    const table = [
      '| phase | shards | writes/s | p50 ms | p99 ms | errors | error % | seconds |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...(['before', 'during', 'after'] as const).map((m, i) => `| ${m} | ${['2', '2 → 3', '3'][i]} | ${modes[m].rps} | ${modes[m].p50_ms} | ${modes[m].p99_ms} | ${modes[m].errors} | ${modes[m].extra.error_pct} | ${modes[m].extra.seconds} |`),
      '',
      `| the move | value |`,
      '|---|---:|',
      `| buckets moved to shard-2 | ${move.buckets.length} |`,
      `| rows copied (orders) | ${move.rowsCopied} |`,
      `| rows copied per second (chunk ${config.resharding.chunkRows}, duty cycle ${config.resharding.sharePct} %, least rest ${config.resharding.throttleMs} ms, ${config.resharding.concurrency} buckets at once) | ${ratios.rows_copied_per_s} |`,
      `| the move's duration; the workers' rests, summed (duty cycle) | ${move.copySeconds.toFixed(1)} s; ${(move.restedSeconds ?? 0).toFixed(1)} s |`,
      `| cut-over pause per bucket, p99 / max (freeze → target takes writes) | ${ratios.cutover_pause_p99_ms} / ${ratios.cutover_pause_max_ms} ms |`,
      `| pause phases p50 / p99 (ms): freeze, compare, last delta, map flip, target owned | ${(['freezeMs', 'checkMs', 'deltaMs', 'flipMs', 'ownMs'] as const).map((k) => `${phases[k].p50} / ${phases[k].p99}`).join(', ')} |`,
      `| before the pause: catch-up passes p50 / p99; buckets with a last delta; freezes withdrawn and retried | ${phases.catchUpMs.p50} / ${phases.catchUpMs.p99} ms; ${phases.deltaBuckets}; ${phases.freezeAttempts.retried} |`,
      `| writes that overlapped their bucket's cut-over: count; latency p99, max | ${overlapped.length}; ${modes.during.extra.cutover_write_p99_ms} ms, ${modes.during.extra.cutover_write_max_ms} ms |`,
      `| time those writes spent inside the pause, p99 / max | ${modes.during.extra.cutover_write_held_p99_ms} / ${modes.during.extra.cutover_write_held_max_ms} ms |`,
      `| orders lost / on a shard the map does not name | ${lost} / ${misplaced} |`,
      `| source clean-up after the run (uncapped) | ${cleanup.buckets} buckets in ${cleanup.seconds} s |`,
      `| shard CPU cap | ${cap == null ? 'none' : capInfo.applied ? `${cap} CPU each (cgroup ${capInfo.mechanism})` : `${cap} requested, NOT applied`}${calibration ? ` — calibrated: ${calibration.cpuPerWriteUs} µs shard CPU per write uncapped × ${targetWps} writes/s per shard${cap === minCap ? `, floor ${minCap}` : ''}` : ''} |`,
      `| catalog primary CPU cap seen during the run (sampled every 5 s; the stack is shared) | ${[...primaryCaps].map((c) => (c == null ? 'none' : `${c} CPU (another run's)`)).join(', ') || 'not read'} |`,
    ].join('\n');
    if ([...primaryCaps].some((c) => c != null)) ctx.log('warning: another run capped the catalog primary during this one: every order and every map flip went through a throttled node');
    return {
      modes,
      ratios,
      caps: cap == null ? undefined : { mechanism: capInfo.mechanism, ...(capInfo.applied ? {} : { reason: capInfo.reason }) },
      tables: [table],
      details: { cap: capInfo, calibration, cutoverPhases: phases, catalogPrimaryCaps: [...primaryCaps], seedOrders, users: USERS, connections, created, stored, cleanup, phases: marks, chunkRows: config.resharding.chunkRows, throttleMs: config.resharding.throttleMs, sharePct: config.resharding.sharePct, concurrency: config.resharding.concurrency },
    };
  },
} satisfies Scenario;
