/**
 * `npm run shards -- <command>`: online resharding on the bucket map (BucketMover, ADR 0005).
 *
 *   status                                   buckets per shard, the map version, moves not cleaned yet
 *   move --buckets 1,2,10-19 --to 2          copy → catch up → verify → cut over → clean up, bucket by bucket
 *   rebalance --to-shards 3                  the moves that give every shard its share, then runs them
 *   cleanup                                  deletes the source rows of moves whose grace period is over
 *   abort --buckets 1,2,10-19                rolls those buckets' moves back, at any step before the map flip
 *
 * Options: --dry-run (print the plan), --test (the test databases). Limits come from config:
 * RESHARD_CHUNK_ROWS, RESHARD_THROTTLE_MS, RESHARD_SHARE_PCT, RESHARD_CONCURRENCY, RESHARD_CLEANUP_GRACE_S, RESHARD_FREEZE_WAIT_MS,
 * RESHARD_FREEZE_ATTEMPTS. A crash (or Ctrl-C) at any step is resumed by running the same command again: the
 * state of every bucket is on the catalog (shard_moves, one row per bucket: the bucket is the move's id).
 * Or rolled back with `abort` before the flip (a bucket a dead mover left frozen takes writes again); after the
 * flip, abort refuses and says how to move the bucket back.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '#libs/core';
import { AbortRefused, BucketMover, DbNodes, parseBucketList, rebalancePlan, type MoverFailpoint, type Progress } from '#libs/db';
import { testConfig } from '#libs/testing';

const USAGE = 'usage: npm run shards -- status | move --buckets <list|range> --to <shard> | rebalance --to-shards <n> | cleanup | abort --buckets <list|range>  [--dry-run] [--test]';
const FAILPOINTS: MoverFailpoint[] = ['mid-copy', 'mid-cutover'];

function fail(msg: string): never {
  console.error(`shards: ${msg}\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      buckets: { type: 'string' },
      to: { type: 'string' },
      'to-shards': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      test: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
} catch (e) {
  fail((e as Error).message);
}
const { values: opt, positionals } = parsed;
const [command, ...extra] = positionals;
if (!command || extra.length || !['status', 'move', 'rebalance', 'cleanup', 'abort'].includes(command)) fail(command ? `unknown command '${[command, ...extra].join(' ')}'` : 'a command is required');

// --test: the test databases (testConfig), with this process's resharding limits (the specs set small ones).
const config = opt.test ? testConfig(Object.fromEntries(Object.entries(process.env).filter(([k]) => /^RESHARD_/.test(k)) as [string, string][])) : loadConfig();
const shardIndex = (raw: string | undefined, name: string): number => {
  if (raw === undefined || !/^\d{1,4}$/.test(raw)) fail(`${name} must be a shard number`);
  const n = Number(raw);
  if (n >= config.db.shards.length) fail(`${name} ${n}: DB_SHARD_URLS lists ${config.db.shards.length} shards (0-${config.db.shards.length - 1})`);
  return n;
};
// Test-only crash switch (the resume tests): ignored outside NODE_ENV=test.
const failpointRaw = config.env === 'test' ? (process.env.RESHARD_FAILPOINT ?? '') : '';
if (failpointRaw && !FAILPOINTS.includes(failpointRaw as MoverFailpoint)) fail(`RESHARD_FAILPOINT must be one of ${FAILPOINTS.join(', ')}`);

function progressLine(): (p: Progress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < (process.stderr.isTTY ? 100 : 1000) && p.phase === 'copying') return;
    last = now;
    const pct = p.rowsTotal ? Math.min(100, Math.round((p.rowsCopied / p.rowsTotal) * 100)) : 100;
    const bar = '#'.repeat(Math.round(pct / 5)).padEnd(20, '.');
    const eta = p.etaSeconds === null ? '-' : `${Math.ceil(p.etaSeconds)}s`;
    const line = `[${bar}] ${pct}% bucket ${p.bucketIndex}/${p.buckets} (${p.bucket}, ${p.phase}) ${p.rowsCopied}/${p.rowsTotal} rows ${Math.round(p.rowsPerSecond)} rows/s ETA ${eta}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  };
}

async function main(): Promise<number> {
  const db = await DbNodes.connect({ ...config.db, replicas: [], poolSize: 4 });
  const r = config.resharding;
  const mover = new BucketMover(db.primary.ds, db.shards, {
    chunkRows: r.chunkRows,
    throttleMs: r.throttleMs,
    sharePct: r.sharePct,
    concurrency: r.concurrency,
    cleanupGraceSeconds: r.cleanupGraceSeconds,
    freezeWaitMs: r.freezeWaitMs,
    freezeAttempts: r.freezeAttempts,
    failpoint: failpointRaw as MoverFailpoint,
    log: (l) => console.log(l),
    onProgress: progressLine(),
  });
  try {
    if (command === 'status') {
      const map = await mover.map();
      const counts = db.shards.map((_, i) => map.filter((s) => s === i).length);
      const [v] = await db.primary.ds.query('SELECT version FROM shard_map_version WHERE id = 1');
      console.log(`map version ${v?.version ?? '-'}; buckets per shard: ${counts.map((c, i) => `shard-${i}=${c}`).join(' ')}`);
      const moves = await db.primary.ds.query("SELECT bucket, from_shard, to_shard, state, rows_copied, pause_ms FROM shard_moves WHERE state <> 'cleaned' ORDER BY bucket");
      for (const m of moves) console.log(`bucket ${m.bucket}: shard-${m.from_shard} -> shard-${m.to_shard} ${m.state} (${m.rows_copied} rows copied, pause ${m.pause_ms ?? '-'} ms)`);
      return 0;
    }
    if (command === 'cleanup') {
      if (opt['dry-run']) {
        const due = await db.primary.ds.query("SELECT bucket FROM shard_moves WHERE state = 'moved' AND moved_at <= NOW(3) - INTERVAL ? SECOND", [r.cleanupGraceSeconds]);
        console.log(`would clean up ${due.length} buckets: ${due.map((d: { bucket: number }) => d.bucket).join(',') || '-'}`);
        return 0;
      }
      const done = await mover.cleanupDue();
      console.log(`cleaned up ${done.length} buckets${done.length ? `: ${done.join(',')}` : ''}`);
      return 0;
    }
    const bucketList = (): number[] => {
      if (!opt.buckets) fail(`${command} needs --buckets`);
      try {
        return parseBucketList(opt.buckets);
      } catch (e) {
        fail((e as Error).message);
      }
    };
    if (command === 'abort') {
      const buckets = bucketList();
      if (opt['dry-run']) {
        const rows = await db.primary.ds.query(`SELECT bucket, from_shard, to_shard, state FROM shard_moves WHERE state <> 'cleaned' AND bucket IN (${buckets.map(() => '?').join(',')}) ORDER BY bucket`, buckets);
        for (const m of rows) console.log(`  bucket ${m.bucket}: shard-${m.from_shard} -> shard-${m.to_shard} ${m.state}${['moved', 'cutover'].includes(m.state) ? ' (abort refuses once the map has flipped)' : ''}`);
        console.log(`dry run: ${rows.length} recorded moves; nothing was changed`);
        return 0;
      }
      try {
        const res = await mover.abort(buckets);
        console.log(`aborted ${res.aborted.length} moves${res.aborted.length ? ` (${res.aborted.map((a) => `${a.bucket} at ${a.was}`).join(', ')})` : ''}; the source shards own those buckets again`);
        if (res.nothingToAbort.length) console.log(`no move to abort for buckets ${res.nothingToAbort.join(',')}`);
        return 0;
      } catch (e) {
        if (!(e instanceof AbortRefused)) throw e;
        console.error(`shards: abort refused, nothing changed: ${e.message}`);
        return 1;
      }
    }
    let groups: { to: number; buckets: number[] }[];
    if (command === 'move') {
      groups = [{ to: shardIndex(opt.to, '--to'), buckets: bucketList() }];
    } else {
      const raw = opt['to-shards'];
      if (raw === undefined || !/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > config.db.shards.length) {
        fail(`--to-shards must be 1-${config.db.shards.length} (the shards DB_SHARD_URLS lists)`);
      }
      const n = Number(raw);
      const plan = rebalancePlan(await mover.map(), n);
      groups = [...new Set(plan.map((p) => p.to))].map((to) => ({ to, buckets: plan.filter((p) => p.to === to).map((p) => p.bucket) }));
    }
    for (const g of groups) {
      const plan = await mover.plan(g.buckets, g.to);
      const todo = plan.filter((p) => p.state !== 'in place');
      console.log(`plan: ${todo.length} buckets to shard-${g.to} (${plan.length - todo.length} already there), ${todo.reduce((s, p) => s + p.orders, 0)} orders`);
      for (const p of todo) console.log(`  bucket ${p.bucket}: shard-${p.from} -> shard-${p.to} (${p.state}, ${p.orders} orders)`);
      if (opt['dry-run']) continue;
      const res = await mover.move(g.buckets, g.to);
      if (process.stderr.isTTY) process.stderr.write('\n');
      const pauses = res.buckets.map((b) => b.pauseMs ?? 0);
      console.log(
        `moved ${res.buckets.length} buckets to shard-${g.to}: ${res.rowsCopied} rows copied in ${res.copySeconds.toFixed(1)} s (${Math.round(res.rowsPerSecond)} rows/s), longest cut-over pause ${Math.max(0, ...pauses)} ms` +
          (r.cleanupGraceSeconds ? `; source rows are deleted by \`npm run shards -- cleanup\` after ${r.cleanupGraceSeconds} s` : ''),
      );
      if (opt.json) console.log(JSON.stringify(res));
    }
    if (opt['dry-run']) console.log('dry run: nothing was changed');
    return 0;
  } finally {
    await db.close();
  }
}

// Exit once stdout is flushed (a pipe is written asynchronously: a long plan would be cut short by exit()).
const exit = (code: number) => process.stdout.write('', () => process.exit(code));
main().then(exit, (e) => {
  console.error(`shards failed: ${(e as Error).message}`);
  exit(1);
});
