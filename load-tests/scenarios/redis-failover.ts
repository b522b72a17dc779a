// Scenario `redis-failover`: what a Redis Sentinel failover costs the app, measured (docs/q3-replication.md).
// Each run starts a sentinel group of its own (docker/local/stack.mjs upSentinel with ownPrimaries: primaries
// on 6392/6393, replicas 6390/6391, sentinels 26379-26381; the shared 6380/6381 are never touched), connects
// with the app's own client code (libs/core createRedis through the sentinels, BullMQ on top), and while a
// producer adds a BullMQ job every 10 ms, a BullMQ worker runs them and a reader GETs a cached key every
// 10 ms, SIGKILLs both primaries at once. Per run:
//   promoted_ms       kill -> the sentinels name the queue replica as master (down-after + vote + promotion)
//   cache_promoted_ms the same for the cache (both masters fail over at once: the sentinels vote for each)
//   write_outage_ms   kill -> the first job add started after the kill that succeeds (what an upload waits)
//   cache_outage_ms   kill -> the first GET started after the kill that returns the cached value (a hit)
//   jobs_lost         adds acknowledged (before or after the kill) that no worker ever ran
//   jobs_twice        jobs run more than once (at-least-once: results must be idempotent)
// Options: --runs 5, --down-after 1000 (ms, STACK_SENTINEL_DOWN_AFTER_MS), --failover-timeout 10000,
// --reconnect-max 500 (ms, REDIS_SENTINEL_RECONNECT_MAX_MS: the clients' longest pause between reconnects).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectedTo, createRedis, loadConfig } from '#libs/core';
import type { Scenario } from '../runner/bench.js';
import { launcher } from '../runner/launcher.js';
import { runOnly } from './support.js';

const PRIMARIES = { cache: 6392, queue: 6393 };

export default {
  name: 'redis-failover',
  description: 'Redis Sentinel: SIGKILL the queue and cache primaries under job adds and cache reads; outage and lost jobs per run',
  ...runOnly,

  async run(ctx, opts) {
    const runs = Number(opts.runs ?? 5);
    if (opts['down-after']) process.env.STACK_SENTINEL_DOWN_AFTER_MS = String(opts['down-after']);
    if (opts['failover-timeout']) process.env.STACK_SENTINEL_FAILOVER_TIMEOUT_MS = String(opts['failover-timeout']);
    const stack = await launcher();
    type Run = Record<string, number | null>;
    const results: Run[] = [];
    const diagnostics: unknown[] = [];

    for (let run = 1; run <= runs; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'redis-failover-'));
      const topo = { dir, ownPrimaries: PRIMARIES, quiet: true };
      const undo = async () => {
        await stack.downSentinel({ ...topo, purge: true });
        rmSync(dir, { recursive: true, force: true });
      };
      ctx.onCleanup(undo); // an interrupted run leaves no server behind
      const clients: Redis[] = [];
      try {
        const rows = await stack.upSentinel(topo);
        const sentinels = rows.filter((r) => r.role === 'sentinel').map((r) => `127.0.0.1:${r.port}`).join(',');
        // The endpoints as the app reads them (libs/core config), from the same variables.
        const config = loadConfig({
          REDIS_CACHE_URL: `redis://127.0.0.1:${PRIMARIES.cache}`, REDIS_CACHE_SENTINELS: sentinels,
          REDIS_QUEUE_URL: `redis://127.0.0.1:${PRIMARIES.queue}`, REDIS_QUEUE_SENTINELS: sentinels,
          ...(opts['reconnect-max'] ? { REDIS_SENTINEL_RECONNECT_MAX_MS: String(opts['reconnect-max']) } : {}),
        });
        const ep = (role: 'cache' | 'queue') => config.redis[role];
        const producer = createRedis(ep('queue'), { connectionName: 'bench-producer' }); // like the API's queue client
        const workerConn = createRedis(ep('queue'), { maxRetriesPerRequest: null, connectionName: 'bench-worker' });
        const cache = createRedis(ep('cache'), { connectionName: 'bench-cache' });
        for (const c of [producer, workerConn, cache]) c.on('error', () => undefined);
        clients.push(producer, workerConn, cache);
        const name = `bench-failover-${run}`;
        const queue = new Queue(name, { connection: producer });
        queue.on('error', () => undefined);
        const ran = new Map<string | undefined, number>();
        const worker = new Worker(name, async (job) => void ran.set(job.id, (ran.get(job.id) ?? 0) + 1), { connection: workerConn, concurrency: 4 });
        worker.on('error', () => undefined);
        await cache.set('bench:hot', 'v');
        const replicasAcked = await cache.wait(1, 2000); // the replica has the key before the kill: a hit after promotion is possible

        const acked: string[] = [];
        let killAt = Infinity;
        let firstWrite: number | null = null;
        let firstHit: number | null = null;
        let stop = false;
        let i = 0;
        let lastWriteError: string | null = null;
        let lastReadError: string | null = null;
        const produce = (async () => {
          while (!stop) {
            const id = `j${++i}`;
            const t = Date.now();
            try {
              await queue.add('job', { i }, { jobId: id, removeOnComplete: false });
              acked.push(id);
              if (t > killAt && firstWrite === null) firstWrite = Date.now() - killAt;
            } catch (e) { lastWriteError = (e as Error).message; }
            await sleep(10);
          }
        })();
        const read = (async () => {
          while (!stop) {
            const t = Date.now();
            try {
              const v = await cache.get('bench:hot');
              if (v !== 'v') lastReadError = `GET returned ${v}`;
              else if (t > killAt && firstHit === null) firstHit = Date.now() - killAt;
            } catch (e) { lastReadError = (e as Error).message; }
            await sleep(10);
          }
        })();
        await sleep(1500);
        killAt = Date.now();
        await Promise.all([stack.killSentinelNode('redis-queue-primary', topo), stack.killSentinelNode('redis-cache-primary', topo)]);
        let promoted: number | null = null;
        let cachePromoted: number | null = null;
        for (const end = Date.now() + 60_000; Date.now() < end && (promoted === null || cachePromoted === null || firstWrite === null || firstHit === null); await sleep(50)) {
          if (promoted === null && (await stack.sentinelMaster('mallscale-queue', topo)) !== PRIMARIES.queue) promoted = Date.now() - killAt;
          if (cachePromoted === null && (await stack.sentinelMaster('mallscale-cache', topo)) !== PRIMARIES.cache) cachePromoted = Date.now() - killAt;
        }
        await sleep(1000);
        stop = true;
        await Promise.all([produce, read]);
        // Every acknowledged add must run; wait (bounded) for the worker to drain.
        for (const end = Date.now() + 30_000; Date.now() < end && acked.some((id) => !ran.has(id)); ) await sleep(100);
        const r: Run = {
          run,
          promoted_ms: promoted,
          write_outage_ms: firstWrite,
          cache_promoted_ms: cachePromoted,
          cache_outage_ms: firstHit,
          jobs_acked: acked.length,
          jobs_lost: acked.filter((id) => !ran.has(id)).length,
          jobs_twice: [...ran.values()].filter((n) => n > 1).length,
        };
        // Why a run did not recover, if one does not: the clients' state and their last errors.
        diagnostics.push({ run, replicasAcked, producer: producer.status, cache: cache.status, cacheAt: connectedTo(cache), lastWriteError, lastReadError, sentinels: await stack.sentinelStatus(topo).then((rows) => rows.map((x) => `${x.name}:${x.state}:${x.detail}`)) });
        results.push(r);
        ctx.log(`run ${run}: ${JSON.stringify(r)}`);
        await worker.close(true);
        await queue.close();
      } finally {
        for (const c of clients) c.disconnect();
        await undo();
      }
    }

    const vals = (k: string) => results.map((r) => r[k]).filter((v): v is number => v !== null).sort((a, b) => a - b);
    const p50 = (k: string) => vals(k)[Math.floor((vals(k).length - 1) / 2)] ?? null;
    const max = (k: string) => vals(k).at(-1) ?? null;
    const sum = (k: string) => results.reduce((s, r) => s + (r[k] ?? 0), 0);
    // A run whose clients never recovered counts as the worst case, not as a missing value.
    const unrecovered = results.filter((r) => r.write_outage_ms === null || r.cache_outage_ms === null).length;
    const cols = ['promoted_ms', 'write_outage_ms', 'cache_promoted_ms', 'cache_outage_ms', 'jobs_acked', 'jobs_lost', 'jobs_twice'];
    const cellOf = (v: number | null) => (v === null ? 'never' : String(v));
    const table = [
      `| run | ${cols.join(' | ')} |`,
      `|---|${cols.map(() => '---:').join('|')}|`,
      ...results.map((r) => `| ${r.run} | ${cols.map((c) => cellOf(r[c])).join(' | ')} |`),
      `| **p50** | ${p50('promoted_ms')} | ${p50('write_outage_ms')} | ${p50('cache_promoted_ms')} | ${p50('cache_outage_ms')} | | | |`,
      `| **max** | ${max('promoted_ms')} | ${max('write_outage_ms')} | ${max('cache_promoted_ms')} | ${max('cache_outage_ms')} | ${sum('jobs_acked')} (sum) | ${sum('jobs_lost')} (sum) | ${sum('jobs_twice')} (sum) |`,
    ].join('\n');
    const topo = stack.sentinelTopology({ dir: '/nonexistent', ownPrimaries: PRIMARIES });
    return {
      tables: [table],
      // null: no run recovered (the result file says so; runs_unrecovered counts them).
      ratios: {
        sentinel_outage_ms: max('write_outage_ms'),
        sentinel_outage_p50_ms: p50('write_outage_ms'),
        cache_outage_ms: max('cache_outage_ms'),
        promoted_p50_ms: p50('promoted_ms'),
        jobs_lost: sum('jobs_lost'),
        runs_unrecovered: unrecovered,
      } as Record<string, number>,
      details: { runs: results, diagnostics, downAfterMs: topo.downAfter, failoverTimeoutMs: topo.failoverTimeout, quorum: 2, reconnectMaxMs: loadConfig({ ...(opts['reconnect-max'] ? { REDIS_SENTINEL_RECONNECT_MAX_MS: String(opts['reconnect-max']) } : {}) }).redis.queue.reconnectMaxMs },
    };
  },
} satisfies Scenario;
