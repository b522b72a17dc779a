/**
 * Redis Sentinel failover on real servers. A sentinel group of this file's own (docker/local/stack.mjs
 * upSentinel with ownPrimaries: primaries on 6392 (cache) and 6393 (queue), replicas on 6390/6391, sentinels
 * on 26379-26381) plays both Redis roles, so SIGKILLing a primary disturbs no other test: the shared
 * redis-cache :6380 and redis-queue :6381 are never touched. The API runs in-process and one real
 * shorts-worker process runs from dist, both configured with REDIS_<ROLE>_SENTINELS only.
 *
 *  - queue primary killed while jobs run and an upload streams: both reconnect to the promoted replica,
 *    every job ends DONE with one archive (at-least-once processing, idempotent result key), the upload
 *    resumes and completes, and the page's SSE (reconnecting with Last-Event-ID) sees the terminal state.
 *  - cache primary killed under product reads: every read answers 200 (DB fallback while Redis is gone),
 *    and reads hit L2 again on the promoted replica.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { connectedTo, createRedis, RedisClients } from '#libs/core';
import { DbNodes } from '#libs/db';
import { JobProgressStream } from '#libs/shorts-jobs';
import { ObjectStorage } from '#libs/storage';
import { bearer, json, makeSyntheticVideo, nativeStack, readSse, signUp, testConfig, waitFor, type NativeStack, type SseEvent, type TestApi } from '#libs/testing';
import { insertProduct } from './cache-support.js';
import { startWorker, tusCreate, tusOffset, tusPatch, uniqueQueue, uploadWhole, type WorkerProc } from './shorts-support.js';
import { startApi } from './support.js';

// Ports of this file's group: the primaries are its own (never the shared 6380/6381).
const PRIMARY = { cache: 6392, queue: 6393 };
const QUEUE = uniqueQueue('sentinel');
const TERMINAL = ['DONE', 'FAILED'];
let stack: NativeStack;
let topo: { dir: string; ownPrimaries: typeof PRIMARY };
let env: Record<string, string>;
let api: TestApi;
let worker: WorkerProc;
let db: DbNodes;
let dir: string;
let video: Buffer;

beforeAll(async () => {
  stack = await nativeStack();
  dir = await mkdtemp(join(tmpdir(), 'sentinel-chaos-'));
  topo = { dir: join(dir, 'sentinel'), ownPrimaries: PRIMARY };
  const rows = await stack.upSentinel({ ...topo, quiet: true });
  const sentinels = rows.filter((r) => r.role === 'sentinel').map((r) => `127.0.0.1:${r.port}`).join(',');
  env = {
    // With sentinels set the URL gives only credentials/db; the master comes from the sentinels.
    REDIS_CACHE_URL: `redis://127.0.0.1:${PRIMARY.cache}`,
    REDIS_CACHE_SENTINELS: sentinels,
    REDIS_QUEUE_URL: `redis://127.0.0.1:${PRIMARY.queue}`,
    REDIS_QUEUE_SENTINELS: sentinels,
    SHORTS_QUEUE: QUEUE,
    SHORTS_WORKER_CONCURRENCY: '2',
    SHORTS_LOCK_MS: '5000',
    SHORTS_STALLED_INTERVAL_MS: '2000',
    // The enqueue sweeper repairs a job add the old primary acknowledged but never replicated.
    SHORTS_SWEEP_AFTER_S: '5',
    SHORTS_SWEEP_INTERVAL_MS: '1000',
    SHORTS_SSE_HEARTBEAT_MS: '1000',
    SHORTS_MAX_ACTIVE_JOBS_PER_USER: '50',
    CACHE_PREFIX: `sentinel-${randomUUID().slice(0, 8)}:`,
    CACHE_L1_TTL_MS: '1', // every read goes to L2, so the test sees the cache primary go and its replica take over
    CACHE_BREAKER_COOLDOWN_MS: '200',
  };
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 2 });
  video = await readFile(await makeSyntheticVideo(join(dir, 'v60.mp4'), { seconds: 60 }));
  api = await startApi(env);
  worker = startWorker({ ...env, SHORTS_WORK_DIR: join(dir, 'work') });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await db?.close();
  if (topo) await stack.downSentinel({ ...topo, purge: true });
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

const promotedFrom = (masterName: string, oldPort: number) =>
  waitFor(async () => {
    const port = await stack.sentinelMaster(masterName, topo);
    return port !== null && port !== oldPort && port;
  }, 60_000, 100);

const sseToken = async (token: string, jobId: string): Promise<string> => {
  const res = await fetch(`${api.url}/shorts/jobs/${jobId}/events-token`, { method: 'POST', headers: bearer(token) });
  if (res.status !== 200 && res.status !== 201) throw new Error(`events-token: ${res.status}`);
  return (await json(res)).token as string;
};

/** What the page does: follow the job's SSE, reconnecting with Last-Event-ID after any cut, until a terminal event. */
async function followLikeThePage(token: string, jobId: string, timeoutMs: number, stopped: () => boolean): Promise<{ events: SseEvent[]; connections: number }> {
  const events: SseEvent[] = [];
  const until = Date.now() + timeoutMs;
  let connections = 0;
  while (Date.now() < until && !stopped() && !events.some((e) => TERMINAL.includes(e.data.step))) {
    const last = events.at(-1)?.id;
    try {
      connections++;
      const r = await readSse(`${api.url}/shorts/jobs/${jobId}/events?token=${await sseToken(token, jobId)}`, last ? { 'last-event-id': last } : {}, (ev) => stopped() || ev.some((e) => TERMINAL.includes(e.data.step)), Math.min(30_000, until - Date.now()));
      events.push(...r.events);
    } catch {
      /* the outage: reconnect as the browser's EventSource would */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { events, connections };
}

const JOBS_BEFORE = 8; // uploaded whole, queued or running when the primary dies
const UPLOADS = 3; // streaming through the failover

/** Sends the rest of a tus upload in chunks, through the outage: a failed PATCH is resumed from HEAD's offset. */
async function streamRest(url: string, token: string, from: number, chunk: number, log: { status: number; at: number }[]): Promise<number> {
  let offset = from;
  const until = Date.now() + 120_000;
  while (offset < video.length && Date.now() < until) {
    try {
      const res = await tusPatch(url, token, offset, video.subarray(offset, offset + chunk));
      log.push({ status: res.status, at: Date.now() });
      if (res.status === 204) {
        offset = Number(res.headers.get('upload-offset'));
        continue;
      }
      offset = await tusOffset(url, token); // 409 after a cut PATCH, 5xx in the outage: resume from what the server has
    } catch {
      /* connection refused or cut mid-body: ask again after a pause */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return offset;
}

describe('Redis Sentinel › queue primary killed', () => {
  it(`when the queue primary is SIGKILLed while ${JOBS_BEFORE} jobs run or wait and ${UPLOADS} uploads stream, then API and worker follow the promoted replica, every job ends DONE with one archive, the uploads complete and the page misses no progress event`, async () => {
    const user = await signUp(api);
    const jobs: string[] = [];
    for (let i = 0; i < JOBS_BEFORE; i++) jobs.push(await uploadWhole(api.url, user.token, video, `before-${i}.mp4`));
    // The streaming uploads: a quarter sent before the kill, the rest in chunks through the failover.
    const chunk = Math.ceil(video.length / 16);
    const uploads: { url: string; offset: number }[] = [];
    for (let i = 0; i < UPLOADS; i++) {
      const created = await tusCreate(api.url, user.token, video.length, `streaming-${i}.mp4`);
      expect(created.status).toBe(201);
      const url = new URL(created.headers.get('location')!, api.url).toString();
      let offset = 0;
      for (; offset < video.length / 4; offset += chunk) expect((await tusPatch(url, user.token, offset, video.subarray(offset, offset + chunk))).status).toBe(204);
      uploads.push({ url, offset });
    }

    let finished = false; // a failed assertion ends the page's loop too, so nothing outlives the test
    const page = followLikeThePage(user.token, jobs[0]!, 280_000, () => finished);
    try {
      expect(await stack.sentinelMaster('mallscale-queue', topo)).toBe(PRIMARY.queue);
      await waitFor(async () => ['GENERATING', 'STORING'].includes((await json(await fetch(`${api.url}/shorts/jobs/${jobs[0]}`, { headers: bearer(user.token) }))).status), 120_000, 200);

      expect(await stack.killSentinelNode('redis-queue-primary', topo)).toEqual(expect.any(Number));
      const statuses: { status: number; at: number }[] = [];
      const streamed = Promise.all(uploads.map((u) => streamRest(u.url, user.token, u.offset, chunk, statuses)));
      const promoted = await promotedFrom('mallscale-queue', PRIMARY.queue);
      expect(await streamed).toEqual(uploads.map(() => video.length));
      for (const u of uploads) jobs.push(u.url.split('/').pop()!);

      // Every job, including those created after the failover, ends DONE with exactly one archive.
      const storage = api.app.get(ObjectStorage);
      for (const id of jobs) {
        const done = await waitFor(async () => {
          const j = await json(await fetch(`${api.url}/shorts/jobs/${id}`, { headers: bearer(user.token) }));
          if (j.status === 'FAILED') throw new Error(`job ${id} FAILED: ${j.reason}`);
          return j.status === 'DONE' && j;
        }, 240_000, 500);
        expect(done.progress).toBe(100);
        expect(await storage.list(`results/${id}/`)).toEqual([{ key: `results/${id}/shorts.zip`, size: expect.any(Number) }]);
      }
      // No 5xx once the queue answered again (the first 204 after the kill), and the API talks to the promoted replica.
      const recoveredAt = statuses.find((x) => x.status === 204)?.at ?? Infinity;
      expect(statuses.filter((x) => x.status >= 500 && x.at > recoveredAt)).toEqual([]);
      expect(connectedTo(api.app.get(RedisClients).queue)?.port).toBe(promoted);

      const followed = await page;
      const config = testConfig(env);
      const redis = createRedis(config.redis.queue, { maxRetriesPerRequest: null });
      const queue = new Queue(QUEUE, { connection: redis });
      try {
        await waitFor(async () => connectedTo(redis)?.port === promoted, 10_000);
        for (const id of jobs) expect((await queue.getJob(id))?.finishedOn).toEqual(expect.any(Number));
        // The page that followed job 0 through the failover (reconnecting with Last-Event-ID) reached DONE and
        // missed nothing the promoted replica holds up to there (events may repeat; an event only the dead
        // primary had may have been shown, it is gone from the stream).
        expect(followed.events.at(-1)?.data.step).toBe('DONE');
        const seen = new Set(followed.events.map((e) => e.id));
        const lastSeen = followed.events.at(-1)!.id!;
        const progress = new JobProgressStream(redis, QUEUE);
        const stored = (await progress.after(jobs[0]!)).filter((e) => !lastSeen || compareStreamIds(e.id, lastSeen) <= 0);
        expect(stored.map((e) => e.event.step)).toContain('DONE');
        expect(stored.filter((e) => !seen.has(e.id))).toEqual([]);
        for (const id of jobs) expect((await progress.after(id)).map((e) => e.event.step)).toContain('DONE');
      } finally {
        await queue.close();
        redis.disconnect();
      }
      // A page opened afterwards replays every job from the start to DONE, from the promoted replica's streams.
      for (const id of jobs) {
        const replay = await readSse(`${api.url}/shorts/jobs/${id}/events?token=${await sseToken(user.token, id)}`, {}, (ev) => ev.some((e) => TERMINAL.includes(e.data.step)), 30_000);
        expect(replay.events.at(-1)?.data.step).toBe('DONE');
      }
    } finally {
      finished = true;
      await page;
    }
  }, 480_000);
});

/** Redis stream ids "<ms>-<seq>" in stream order. */
function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am! < bm! ? -1 : 1) : as === bs ? 0 : as! < bs! ? -1 : 1;
}

describe('Redis Sentinel › cache primary killed', () => {
  it('when the cache primary is SIGKILLed under product reads, then every read answers 200 and reads hit L2 again on the promoted replica', async () => {
    const id = await insertProduct(db, 'test-sentinel', `sentinel-${randomUUID()}`, 4242);
    await waitFor(async () => (await fetch(`${api.url}/products/${id}`)).headers.get('x-cache') === 'l2', 20_000);
    const reads: { status: number; tier: string; at: number; price: number }[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const res = await fetch(`${api.url}/products/${id}`);
        reads.push({ status: res.status, tier: res.headers.get('x-cache') ?? '', at: Date.now(), price: (await json(res)).priceCents });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      expect(await stack.killSentinelNode('redis-cache-primary', topo)).toEqual(expect.any(Number));
      const promoted = await promotedFrom('mallscale-cache', PRIMARY.cache);
      const promotedAt = Date.now();
      await waitFor(async () => reads.some((r) => r.at > promotedAt && r.tier === 'l2'), 60_000, 100).catch((e) => {
        const tiers = reads.filter((r) => r.at > promotedAt).map((r) => r.tier);
        throw new Error(`${e.message}; cache client ${api.app.get(RedisClients).cache.status}, tiers after promotion: ${[...new Set(tiers)].join(',')} (${tiers.length} reads)`);
      });
      expect(connectedTo(api.app.get(RedisClients).cache)?.port).toBe(promoted);
    } finally {
      stop = true;
      await load;
    }
    expect(reads.length).toBeGreaterThan(10);
    expect(reads.filter((r) => r.status !== 200)).toEqual([]);
    expect(new Set(reads.map((r) => r.price))).toEqual(new Set([4242]));
  }, 180_000);
});
