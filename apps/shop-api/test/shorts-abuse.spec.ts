/**
 * The upload and job paths tried as an attacker would, on real servers: two shop-api instances sharing
 * MariaDB, redis-queue and the filesystem storage; no worker on this queue unless a test plays one.
 * Raw paths go through node:http, because fetch() normalises dot segments and would never send them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Worker } from 'bullmq';
import { createRedis, RedisClients, Settings } from '#libs/core';
import { DbNodes } from '#libs/db';
import { JobProgressStream } from '#libs/shorts-jobs';
import { ObjectStorage } from '#libs/storage';
import { bearer, json, signUp, waitFor, type TestApi, readSse } from '#libs/testing';
import { ShortsEnqueueSweeper, WORKER_LOST_REASON } from '../src/shorts/enqueue.sweeper.js';
import { ShortsQuotas } from '../src/shorts/quotas.js';
import { ShortsRetentionSweeper } from '../src/shorts/retention.sweeper.js';
import { ShortsService } from '../src/shorts/shorts.service.js';
import { startApi } from './support.js';
import { tusCreate, tusOffset, tusPatch, uniqueQueue, uploadWhole } from './shorts-support.js';

const QUEUE = uniqueQueue('abuse');
const env = {
  SHORTS_QUEUE: QUEUE,
  SHORTS_MAX_ACTIVE_JOBS_PER_USER: '2',
  SHORTS_MAX_UPLOAD_BYTES_PER_DAY: '10000',
  SHORTS_MAX_SSE_STREAMS_PER_USER: '2',
  SHORTS_UPLOAD_IDLE_TIMEOUT_MS: '1000',
  SHORTS_SSE_HEARTBEAT_MS: '500',
  // Sweeps are driven by calling sweepOnce(); the timers never fire during the test.
  SHORTS_SWEEP_INTERVAL_MS: '3600000',
  SHORTS_SWEEP_AFTER_S: '1',
  SHORTS_RETENTION_INTERVAL_MS: '0',
};
let a: TestApi;
let b: TestApi;

beforeAll(async () => {
  [a, b] = await Promise.all([startApi(env), startApi(env)]);
}, 60000);

afterAll(async () => {
  await a?.close();
  await b?.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with the path sent exactly as written. */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const tusHeaders = (token: string) => ({ authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' });
const idOf = (res: Response) => new URL(res.headers.get('location')!, 'http://x').pathname.split('/').pop()!;

async function storedBytes(id: string): Promise<number> {
  return (await a.app.get(ObjectStorage).list(`uploads/${id}/`)).filter((o) => !o.key.endsWith('info.json')).reduce((n, o) => n + o.size, 0);
}

describe('tus ownership: only /shorts/uploads and /shorts/uploads/<id> reach tus, and tus acts on the checked id', () => {
  let victim: { token: string };
  let attacker: { token: string };
  let victimId: string;
  let attackerId: string;

  // A fresh pair per test: one successful attack must not make the next test fail for the wrong reason.
  beforeEach(async () => {
    [victim, attacker] = await Promise.all([signUp(a), signUp(a)]);
    const v = await tusCreate(a.url, victim.token, 1000);
    victimId = idOf(v);
    expect((await tusPatch(`${a.url}/shorts/uploads/${victimId}`, victim.token, 0, Buffer.alloc(100, 1))).status).toBe(204);
    attackerId = idOf(await tusCreate(a.url, attacker.token, 1000));
  });

  const forms: [string, (victimId: string, attackerId: string) => string][] = [
    ['/shorts/uploads?/<id>', (v) => `/shorts/uploads?/${v}`],
    ['/shorts/uploads/<own id>?/<id>', (v, own) => `/shorts/uploads/${own}?/${v}`],
    ['an encoded slash /shorts/uploads%2F<id>', (v) => `/shorts/uploads%2F${v}`],
    ['an encoded slash /shorts/uploads/x%2F<id>', (v) => `/shorts/uploads/x%2F${v}`],
    ['a trailing slash /shorts/uploads/<id>/', (v) => `/shorts/uploads/${v}/`],
    ['dot segments /shorts/uploads/x/../<id>', (v) => `/shorts/uploads/x/../${v}`],
    ['encoded dot segments /shorts/uploads/x/%2e%2e/<id>', (v) => `/shorts/uploads/x/%2e%2e/${v}`],
    ['a double slash /shorts/uploads//<id>', (v) => `/shorts/uploads//${v}`],
  ];

  for (const [name, path] of forms) {
    it(`a user cannot PATCH, HEAD or DELETE another user's upload through ${name}`, async () => {
      const p = path(victimId, attackerId);
      const patch = await raw(a.url, 'PATCH', p, { ...tusHeaders(attacker.token), 'upload-offset': '100', 'content-type': 'application/offset+octet-stream' }, Buffer.alloc(50, 2));
      const head = await raw(a.url, 'HEAD', p, tusHeaders(attacker.token));
      const del = await raw(a.url, 'DELETE', p, tusHeaders(attacker.token));
      for (const res of [patch, head, del]) {
        expect([400, 404]).toContain(res.status);
        expect(res.headers['upload-offset']).toBeUndefined();
      }
      for (const res of [patch, del]) {
        expect(res.headers['content-type']).toContain('application/json');
        expect(JSON.parse(res.body).error).toMatchObject({ status: res.status, code: expect.any(String), message: expect.any(String), requestId: expect.any(String) });
      }
      // The victim's upload is untouched: same offset, same bytes, still there.
      expect(await tusOffset(`${a.url}/shorts/uploads/${victimId}`, victim.token)).toBe(100);
      expect(await storedBytes(victimId)).toBe(100);
      expect(await tusOffset(`${a.url}/shorts/uploads/${attackerId}`, attacker.token)).toBe(0);
    });
  }

  it('the owner still PATCHes, HEADs and DELETEs their own upload through /shorts/uploads/<id>', async () => {
    const owner = await signUp(a);
    const id = idOf(await tusCreate(a.url, owner.token, 10));
    expect((await tusPatch(`${b.url}/shorts/uploads/${id}`, owner.token, 0, Buffer.alloc(4))).status).toBe(204);
    expect(await tusOffset(`${b.url}/shorts/uploads/${id}`, owner.token)).toBe(4);
    expect((await fetch(`${a.url}/shorts/uploads/${id}`, { method: 'DELETE', headers: tusHeaders(owner.token) })).status).toBe(204);
    expect(await storedBytes(id)).toBe(0);
  });

  it('a finished upload (a job\'s source) cannot be deleted through tus', async () => {
    const owner = await signUp(a);
    const id = await uploadWhole(a.url, owner.token, Buffer.from('0123456789'), 'x.txt');
    const del = await fetch(`${a.url}/shorts/uploads/${id}`, { method: 'DELETE', headers: tusHeaders(owner.token) });
    expect(del.status).toBeGreaterThanOrEqual(400);
    expect(del.status).toBeLessThan(500);
    expect(await a.app.get(ObjectStorage).head(`uploads/${id}/source`)).toMatchObject({ size: 10 });
  });
});

describe('per-user quotas (shared by all API instances)', () => {
  it('a user cannot start more than SHORTS_MAX_ACTIVE_JOBS_PER_USER unfinished uploads and jobs: 429', async () => {
    const user = await signUp(a);
    await uploadWhole(a.url, user.token, Buffer.from('queued, never processed'), 'one.txt'); // a QUEUED job
    expect((await tusCreate(b.url, user.token, 100)).status).toBe(201); // an unfinished upload
    const third = await tusCreate(a.url, user.token, 100);
    expect(third.status).toBe(429);
    expect((await json(third)).error).toMatchObject({ status: 429, code: 'too_many_active_jobs', message: expect.stringMatching(/at most 2/), requestId: expect.any(String) });
    const other = await signUp(a);
    expect((await tusCreate(a.url, other.token, 100)).status).toBe(201);
  });

  it('a user cannot pass SHORTS_MAX_ACTIVE_JOBS_PER_USER by creating uploads in parallel on several instances', async () => {
    const user = await signUp(a);
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => tusCreate(i % 2 ? a.url : b.url, user.token, 10)));
    const statuses = all.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 429, 429, 429, 429, 429, 429]);
  });

  it('creations that tus refuses (a malformed Upload-Metadata) use up neither the user\'s slots nor their bytes', async () => {
    const user = await signUp(a);
    for (let i = 0; i < 3; i++) {
      const bad = await fetch(`${a.url}/shorts/uploads`, { method: 'POST', headers: { ...tusHeaders(user.token), 'upload-length': '6000', 'upload-metadata': 'filename !!not-base64!!' } });
      expect(bad.status).toBe(400);
      expect((await json(bad)).error).toMatchObject({ status: 400, requestId: expect.any(String) });
    }
    expect((await tusCreate(a.url, user.token, 6000)).status).toBe(201);
    expect((await tusCreate(b.url, user.token, 4000)).status).toBe(201);
  });

  it('a user cannot upload more than SHORTS_MAX_UPLOAD_BYTES_PER_DAY bytes in a day, across instances: 429 with Retry-After', async () => {
    const user = await signUp(a);
    expect((await tusCreate(a.url, user.token, 6000)).status).toBe(201);
    const over = await tusCreate(b.url, user.token, 5000);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json(over)).error).toMatchObject({ status: 429, code: 'upload_quota_exceeded', message: expect.stringMatching(/daily upload limit/) });
    // The refused upload was not counted: the rest of the day's bytes are still available.
    expect((await tusCreate(b.url, user.token, 4000)).status).toBe(201);
  });

  it('a user cannot send an upload of unknown length (Upload-Defer-Length) around the byte quota: 400', async () => {
    const user = await signUp(a);
    const res = await fetch(`${a.url}/shorts/uploads`, { method: 'POST', headers: { ...tusHeaders(user.token), 'upload-defer-length': '1' } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatchObject({ status: 400, code: 'bad_request', message: expect.stringMatching(/Upload-Length/) });
  });

  it('a POST with Upload-Concat (partial or final, naming another user\'s upload) gets 400 in the JSON shape, not 501, and uses no slot', async () => {
    const victim = await signUp(a);
    const victimId = idOf(await tusCreate(a.url, victim.token, 100));
    const user = await signUp(a);
    for (const concat of ['partial', `final;/shorts/uploads/${victimId}`]) {
      const res = await fetch(`${a.url}/shorts/uploads`, { method: 'POST', headers: { ...tusHeaders(user.token), 'upload-length': '100', 'upload-concat': concat } });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ status: 400, code: 'bad_request', message: expect.stringMatching(/Upload-Concat/), requestId: expect.any(String) });
    }
    // Neither refused request held one of the user's SHORTS_MAX_ACTIVE_JOBS_PER_USER (2) slots.
    expect((await tusCreate(a.url, user.token, 100)).status).toBe(201);
    expect((await tusCreate(b.url, user.token, 100)).status).toBe(201);
  });

  it('a user cannot hold more than SHORTS_MAX_SSE_STREAMS_PER_USER progress streams across instances: 429; a closed stream frees its slot', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, Buffer.from('queued, never processed'), 'sse.txt');
    const open = async (api: TestApi) => {
      const ac = new AbortController();
      const res = await fetch(`${api.url}/shorts/jobs/${id}/events`, { headers: bearer(user.token), signal: ac.signal });
      return { res, ac };
    };
    const s1 = await open(a);
    const s2 = await open(b);
    expect([s1.res.status, s2.res.status]).toEqual([200, 200]);
    const s3 = await open(a);
    expect(s3.res.status).toBe(429);
    expect((await json(s3.res)).error).toMatchObject({ status: 429, code: 'too_many_streams', requestId: expect.any(String) });
    s1.ac.abort();
    const s4 = await waitFor(async () => {
      const s = await open(b);
      if (s.res.status === 200) return s;
      await s.res.body?.cancel();
      return false;
    }, 10000, 200);
    s2.ac.abort();
    s4.ac.abort();
  });
});

describe('upload bodies that stall', () => {
  it('a PATCH that stops sending is cut after SHORTS_UPLOAD_IDLE_TIMEOUT_MS: what arrived is kept and the lock is free', async () => {
    const user = await signUp(a);
    const id = idOf(await tusCreate(a.url, user.token, 1000));
    const u = new URL(a.url);
    const ended = await new Promise<string>((resolve) => {
      const req = request({
        host: u.hostname,
        port: u.port,
        method: 'PATCH',
        path: `/shorts/uploads/${id}`,
        headers: { ...tusHeaders(user.token), 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': '1000' },
      });
      req.on('response', (res) => resolve(`response ${res.statusCode}`));
      req.on('error', () => resolve('cut'));
      req.on('close', () => resolve('cut'));
      req.write(Buffer.alloc(300, 7)); // ...and nothing more
      setTimeout(() => resolve('not cut'), 15000).unref();
    });
    expect(ended).toBe('cut');
    const offset = await waitFor(async () => (await tusOffset(`${a.url}/shorts/uploads/${id}`, user.token)) === 300 && 300, 5000);
    expect(offset).toBe(300);
    expect(await a.app.get(RedisClients).queue.exists(`${QUEUE}:tus-lock:${id}`)).toBe(0);
    const rest = await tusPatch(`${b.url}/shorts/uploads/${id}`, user.token, 300, Buffer.alloc(700, 7));
    expect(rest.status).toBe(204);
    expect(rest.headers.get('upload-offset')).toBe('1000');
  });

  it('a slow upload that keeps moving is not cut, however long it takes', async () => {
    const user = await signUp(a);
    const id = idOf(await tusCreate(a.url, user.token, 1000));
    const u = new URL(a.url);
    // 10 chunks, 300 ms apart: the whole body takes 3x the idle timeout, no gap reaches it.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'PATCH',
          path: `/shorts/uploads/${id}`,
          headers: { ...tusHeaders(user.token), 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': '1000' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      let sent = 0;
      const tick = () => {
        req.write(Buffer.alloc(100, 3));
        if (++sent === 10) req.end();
        else setTimeout(tick, 300);
      };
      tick();
    });
    expect(status).toBe(204);
    expect(await tusOffset(`${a.url}/shorts/uploads/${id}`, user.token)).toBe(1000);
  });
});

describe('expiry and retention', () => {
  it('an unfinished upload older than SHORTS_UPLOAD_EXPIRY_S answers 410 and the retention sweeper deletes it', async () => {
    const user = await signUp(a);
    const id = idOf(await tusCreate(a.url, user.token, 1000));
    expect((await tusPatch(`${a.url}/shorts/uploads/${id}`, user.token, 0, Buffer.alloc(10))).status).toBe(204);
    const storage = a.app.get(ObjectStorage);
    // Age the upload by two days, as if it had been left there.
    const old = Date.now() - 2 * 86400 * 1000;
    const chunks: Buffer[] = [];
    for await (const c of await storage.get(`uploads/${id}/info.json`)) chunks.push(Buffer.from(c));
    await storage.put(`uploads/${id}/info.json`, JSON.stringify({ ...JSON.parse(Buffer.concat(chunks).toString()), creation_date: new Date(old).toISOString() }));
    await a.app.get(ShortsQuotas).openUpload(user.id, id, old);

    const head = await fetch(`${a.url}/shorts/uploads/${id}`, { method: 'HEAD', headers: tusHeaders(user.token) });
    expect(head.status).toBe(410);
    const sweeper = a.app.get(ShortsRetentionSweeper);
    await a.app.get(RedisClients).queue.del(sweeper.lockKey);
    const round = await sweeper.sweepOnce();
    expect(round.uploads).toContain(id);
    expect(await storage.list(`uploads/${id}/`)).toEqual([]);
    expect(await a.app.get(ShortsQuotas).openUploads(user.id)).toBe(0);
  });

  it('sources and results of finished jobs are deleted after their retention; the job stays, marked expired, and its result answers 410', async () => {
    const user = await signUp(a);
    const storage = a.app.get(ObjectStorage);
    const db = a.app.get(DbNodes).primary.ds;
    const plant = async (status: string, ageDays: number) => {
      const id = randomBytes(16).toString('hex');
      await storage.put(`uploads/${id}/source`, 'source bytes');
      await storage.put(`results/${id}/shorts.zip`, 'result bytes');
      await db.query(
        `INSERT INTO shorts_jobs (id, user_id, file_name, size_bytes, source_key, queue, status, progress, result_key, created_at, updated_at)
         VALUES (?, ?, 'old.mp4', 12, ?, ?, ?, 100, ?, NOW(3) - INTERVAL ? DAY, NOW(3) - INTERVAL ? DAY)`,
        [id, user.id, `uploads/${id}/source`, QUEUE, status, status === 'DONE' ? `results/${id}/shorts.zip` : null, ageDays, ageDays],
      );
      return id;
    };
    const veryOld = await plant('DONE', 40); // past both retentions (7 d source, 30 d result)
    const weekOld = await plant('DONE', 10); // source past, result kept
    const recent = await plant('DONE', 1); // both kept
    const sweeper = a.app.get(ShortsRetentionSweeper);
    await a.app.get(RedisClients).queue.del(sweeper.lockKey);
    const round = await sweeper.sweepOnce();
    expect(round.sources).toEqual(expect.arrayContaining([veryOld, weekOld]));
    expect(round.sources).not.toContain(recent);
    expect(round.results).toContain(veryOld);
    expect(round.results).not.toContain(weekOld);

    expect(await storage.head(`uploads/${veryOld}/source`)).toBeUndefined();
    expect(await storage.head(`results/${veryOld}/shorts.zip`)).toBeUndefined();
    expect(await storage.head(`uploads/${weekOld}/source`)).toBeUndefined();
    expect(await storage.head(`results/${weekOld}/shorts.zip`)).toBeDefined();
    expect(await storage.head(`uploads/${recent}/source`)).toBeDefined();

    const job = await json(await fetch(`${a.url}/shorts/jobs/${veryOld}`, { headers: bearer(user.token) }));
    expect(job).toMatchObject({ status: 'DONE', expired: true, resultUrl: null });
    const result = await fetch(`${a.url}/shorts/jobs/${veryOld}/result`, { headers: bearer(user.token) });
    expect(result.status).toBe(410);
    expect((await json(result)).error).toMatchObject({ status: 410, code: 'gone' });
    expect((await fetch(`${a.url}/shorts/jobs/${weekOld}/result`, { headers: bearer(user.token) })).status).toBe(200);

    // The marks did not restart the clock: a second round finds nothing new for these rows.
    await a.app.get(RedisClients).queue.del(sweeper.lockKey);
    const again = await sweeper.sweepOnce();
    expect([...again.sources, ...again.results]).not.toEqual(expect.arrayContaining([veryOld]));
  });
});

describe('jobs the workers lose', () => {
  it('a stalled job that BullMQ gives up on becomes FAILED and its SSE stream ends', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, Buffer.from('a job whose worker hangs'), 'stall.txt');
    const config = a.app.get(Settings);
    const progress = new JobProgressStream(a.app.get(RedisClients).queue, QUEUE);
    // A worker that takes the job, reports GENERATING and then hangs without renewing its lock; its
    // stalled checker (maxStalledCount 0) fails the job the first time the lock lapses.
    let release!: () => void;
    const hung = new Promise<void>((r) => (release = r));
    const connection = createRedis(config.redis.queueUrl, { maxRetriesPerRequest: null });
    const worker = new Worker(
      QUEUE,
      async (job) => {
        await progress.append({ jobId: job.data.jobId, step: 'GENERATING', percent: 10, attempt: 1 });
        await hung;
      },
      // Enough concurrency that the (hung) jobs other tests left on this queue do not keep ours waiting.
      { connection, concurrency: 100, lockDuration: 1000, stalledInterval: 500, maxStalledCount: 0, skipLockRenewal: true },
    );
    try {
      const sse = readSse(`${a.url}/shorts/jobs/${id}/events`, bearer(user.token), (ev) => ev.some((e) => ['DONE', 'FAILED'].includes(e.data.step)), 60000);
      const sweeper = a.app.get(ShortsEnqueueSweeper);
      const bull = await waitFor(async () => {
        const job = await a.app.get(ShortsService).queue.getJob(id);
        return job && (await job.getState()) === 'failed' && job;
      }, 30000, 200);
      expect(bull.failedReason).toMatch(/stalled/);
      // The job row says GENERATING (the consumer persisted the worker's last event) until the sweeper runs.
      await waitFor(async () => (await json(await fetch(`${a.url}/shorts/jobs/${id}`, { headers: bearer(user.token) }))).status === 'GENERATING', 10000);
      const failed = await waitFor(async () => {
        await a.app.get(RedisClients).queue.del(sweeper.lockKey);
        const round = await sweeper.sweepOnce();
        return round.failed?.includes(id) && round.failed;
      }, 15000, 300);
      expect(failed).toContain(id);
      const stream = await sse;
      expect(stream.status).toBe(200);
      expect(stream.events.at(-1)!.data).toMatchObject({ step: 'FAILED', reason: WORKER_LOST_REASON, reasonCode: 'worker_lost' });
      const row = await waitFor(async () => {
        const j = await json(await fetch(`${a.url}/shorts/jobs/${id}`, { headers: bearer(user.token) }));
        return j.status === 'FAILED' && j;
      }, 10000);
      expect(row).toMatchObject({ reason: WORKER_LOST_REASON, reasonCode: 'worker_lost' });
      // Exactly one FAILED event, even though the sweeper ran more than once.
      await a.app.get(RedisClients).queue.del(sweeper.lockKey);
      await sweeper.sweepOnce();
      expect((await progress.after(id)).filter((e) => e.event.step === 'FAILED')).toHaveLength(1);
    } finally {
      release();
      await worker.close(true);
      connection.disconnect();
    }
  }, 90000);

  it('a malformed progress event does not block the consumer', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, Buffer.from('queued, never processed'), 'feed.txt');
    const redis = a.app.get(RedisClients).queue;
    const progress = new JobProgressStream(redis, QUEUE);
    await redis.xadd(progress.feedKey, '*', 'job', id, 'sid', '1-0', 'e', 'not json {');
    await redis.xadd(progress.feedKey, '*', 'job', id, 'sid', '2-0', 'e', JSON.stringify({ jobId: id, step: 'BOGUS', percent: 1 }));
    await redis.xadd(progress.feedKey, '*', 'job', id, 'e', JSON.stringify({ jobId: id, step: 'GENERATING', percent: 1 }));
    await progress.append({ jobId: id, step: 'GENERATING', percent: 42 });
    const job = await waitFor(async () => {
      const j = await json(await fetch(`${a.url}/shorts/jobs/${id}`, { headers: bearer(user.token) }));
      return j.status === 'GENERATING' && j;
    }, 15000);
    expect(job.progress).toBe(42);
    // Nothing is left pending in the group: the bad entries were acknowledged, not retried for ever.
    const pending = await waitFor(async () => {
      const [count] = (await redis.xpending(progress.feedKey, 'persist')) as [number];
      return count === 0 && 'none';
    }, 15000);
    expect(pending).toBe('none');
  }, 60000);
});
