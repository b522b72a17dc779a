/**
 * The shorts pipeline end to end on real servers: two shop-api instances in-process, two shorts-worker
 * processes from dist, MariaDB, redis-queue, the filesystem storage driver, and a 60 s synthetic video
 * generated here with ffmpeg's lavfi sources.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, json, signUp, waitFor, type TestApi, makeSyntheticVideo, readZip, readSse } from '#libs/testing';
import { RedisClients } from '#libs/core';
import { JobProgressStream } from '#libs/shorts-jobs';
import { ObjectStorage } from '#libs/storage';
import { startApi } from './support.js';
import { startWorker, tusCreate, tusOffset, tusPatch, uniqueQueue, uploadWhole, type WorkerProc } from './shorts-support.js';

const QUEUE = uniqueQueue('spec');
const MAX = 20 * 1024 * 1024;
let a: TestApi;
let b: TestApi;
let workers: WorkerProc[] = [];
let dir: string;
let video: Buffer;

const env = { SHORTS_QUEUE: QUEUE, SHORTS_MAX_UPLOAD_BYTES: String(MAX), SHORTS_SSE_HEARTBEAT_MS: '1000' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorts-spec-'));
  video = await readFile(await makeSyntheticVideo(join(dir, 'v60.mp4'), { seconds: 60 }));
  [a, b] = await Promise.all([startApi(env), startApi(env)]);
  const workerEnv = { ...env, SHORTS_WORK_DIR: join(dir, 'work') };
  workers = [startWorker(workerEnv), startWorker(workerEnv)];
}, 120000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await a?.close();
  await b?.close();
  await rm(dir, { recursive: true, force: true });
});

const job = async (api: TestApi, token: string, id: string) => json(await fetch(`${api.url}/shorts/jobs/${id}`, { headers: bearer(token) }));
const sseToken = async (api: TestApi, token: string, jobId: string) => (await json(await fetch(`${api.url}/shorts/jobs/${jobId}/events-token`, { method: 'POST', headers: bearer(token) }))).token as string;

describe('POST /shorts/uploads (tus) › GET /shorts/jobs/:id', () => {
  it('when a 60 s video is uploaded, then the job goes QUEUED → DONE and the result is one archive with 3 playable 9:16 shorts', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, video, 'holiday.mp4');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const listed = await json(await fetch(`${b.url}/me/shorts/jobs`, { headers: bearer(user.token) }));
    expect(listed.jobs.map((j: any) => j.id)).toContain(id);

    const sse = await readSse(`${b.url}/shorts/jobs/${id}/events?token=${await sseToken(b, user.token, id)}`, {}, (ev) => ev.some((e) => ['DONE', 'FAILED'].includes(e.data.step)));
    const steps = sse.events.map((e) => e.data.step);
    expect(steps[0]).toBe('QUEUED');
    expect(steps.at(-1)).toBe('DONE');
    for (const s of ['DOWNLOADING', 'GENERATING', 'STORING']) expect(steps).toContain(s);
    const generating = sse.events.filter((e) => e.data.step === 'GENERATING').map((e) => e.data.percent);
    expect(generating.length).toBeGreaterThan(3);

    const done = await waitFor(async () => {
      const j = await job(a, user.token, id);
      return j.status === 'DONE' && j;
    }, 30000);
    expect(done).toMatchObject({ fileName: 'holiday.mp4', progress: 100, resultUrl: `/shorts/jobs/${id}/result` });

    const res = await fetch(`${a.url}${done.resultUrl}`, { headers: bearer(user.token) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const zip = await readZip(Buffer.from(await res.arrayBuffer()));
    expect([...zip.keys()].sort()).toEqual(['manifest.json', 'short-1.mp4', 'short-2.mp4', 'short-3.mp4']);
    for (let i = 1; i <= 3; i++) {
      const f = join(dir, `${id}-${i}.mp4`);
      await writeFile(f, zip.get(`short-${i}.mp4`)!);
      const v = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,width,height', '-of', 'json', f]).toString()).streams.find((s: any) => s.codec_type === 'video');
      expect(v.width! * 16).toBe(v.height! * 9);
    }
  });

  it('when the input is not a video, then the job is FAILED with the reason "not a video file" (no retries)', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, Buffer.from('just some text, definitely not a video\n'.repeat(50)), 'notes.txt');
    const failed = await waitFor(async () => {
      const j = await job(a, user.token, id);
      return j.status === 'FAILED' && j;
    }, 60000);
    expect(failed.reason).toBe('not a video file');
    expect(failed.attempt).toBe(1);
    const r = await fetch(`${a.url}/shorts/jobs/${id}/result`, { headers: bearer(user.token) });
    expect(r.status).toBe(409);
  });

  it('when two jobs are queued, then the two workers process them in parallel', async () => {
    const user = await signUp(a);
    const ids = await Promise.all([uploadWhole(a.url, user.token, video, 'one.mp4'), uploadWhole(b.url, user.token, video, 'two.mp4')]);
    const progress = new JobProgressStream(a.app.get(RedisClients).queue, QUEUE);
    await waitFor(async () => (await Promise.all(ids.map((id) => job(a, user.token, id)))).every((j) => j.status === 'DONE'), 120000, 500);
    const streams = await Promise.all(ids.map((id) => progress.after(id)));
    const workerOf = streams.map((s) => new Set(s.filter((e) => e.event.worker).map((e) => e.event.worker)));
    expect(workerOf[0].size).toBe(1);
    expect(workerOf[1].size).toBe(1);
    expect([...workerOf[0]][0]).not.toBe([...workerOf[1]][0]);
    // Overlap, by Redis's own clock: each job started generating before the other one finished.
    const at = (s: typeof streams[0], step: string, pick: 'first' | 'last') => {
      const xs = s.filter((e) => e.event.step === step).map((e) => Number(e.id.split('-')[0]));
      return pick === 'first' ? xs[0] : xs.at(-1)!;
    };
    expect(at(streams[0], 'GENERATING', 'first')).toBeLessThan(at(streams[1], 'DONE', 'last'));
    expect(at(streams[1], 'GENERATING', 'first')).toBeLessThan(at(streams[0], 'DONE', 'last'));
  }, 180000);
});

describe('PATCH /shorts/uploads/:id (tus resume)', () => {
  it('when an upload is cut at 50 % and resumed on another API instance, then the stored file is byte-identical', async () => {
    const user = await signUp(a);
    const data = video;
    const created = await tusCreate(a.url, user.token, data.length, 'cut.mp4');
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, a.url);
    const half = Math.floor(data.length / 2);
    // Send the first half of the body, then drop the connection.
    await new Promise<void>((resolve) => {
      const req = request(url, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${user.token}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(data.length) },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(data.subarray(0, half), () => setTimeout(() => req.destroy(), 300));
    });
    const id = url.pathname.split('/').pop()!;
    const bUrl = `${b.url}/shorts/uploads/${id}`;
    const offset = await waitFor(async () => {
      const o = await tusOffset(bUrl, user.token);
      return o > 0 && o;
    }, 15000);
    expect(offset).toBeLessThanOrEqual(half);
    const rest = await tusPatch(bUrl, user.token, offset, data.subarray(offset));
    expect(rest.status).toBe(204);
    expect(Number(rest.headers.get('upload-offset'))).toBe(data.length);
    const storage = a.app.get(ObjectStorage);
    const chunks: Buffer[] = [];
    for await (const c of await storage.get(`uploads/${id}/source`)) chunks.push(Buffer.from(c));
    const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');
    expect(sha(Buffer.concat(chunks))).toBe(sha(data));
    expect(await storage.list(`uploads/${id}/parts/`)).toEqual([]);
  });

  it('when the upload is larger than SHORTS_MAX_UPLOAD_BYTES, then 413 in the error shape', async () => {
    const user = await signUp(a);
    const res = await tusCreate(a.url, user.token, MAX + 1);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('tus-resumable')).toBe('1.0.0');
    const body = await json(res);
    expect(body.error).toMatchObject({ status: 413, code: 'payload_too_large', message: expect.stringMatching(/size/i) });
    expect(body.error.requestId).toEqual(expect.any(String));
  });

  it('when a tus request breaks the protocol (no Tus-Resumable, wrong offset), then 412 / 409 in the error shape', async () => {
    const user = await signUp(a);
    const noVersion = await fetch(`${a.url}/shorts/uploads`, { method: 'POST', headers: { ...bearer(user.token), 'upload-length': '10' } });
    expect(noVersion.status).toBe(412);
    expect((await json(noVersion)).error).toMatchObject({ status: 412, code: 'http_412', requestId: expect.any(String) });
    const created = await tusCreate(a.url, user.token, 100);
    const url = new URL(created.headers.get('location')!, a.url).toString();
    const wrongOffset = await tusPatch(url, user.token, 50, Buffer.alloc(10));
    expect(wrongOffset.status).toBe(409);
    expect((await json(wrongOffset)).error).toMatchObject({ status: 409, code: 'conflict' });
    expect(await tusOffset(url, user.token)).toBe(0);
  });

  it('when there is no token, then 401 in the error shape; when the upload is another user\'s, then 404', async () => {
    const owner = await signUp(a);
    const other = await signUp(a);
    const noAuth = await fetch(`${a.url}/shorts/uploads`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '10' } });
    expect(noAuth.status).toBe(401);
    expect((await json(noAuth)).error).toMatchObject({ status: 401, code: 'unauthorized' });
    const created = await tusCreate(a.url, owner.token, 1000);
    const url = new URL(created.headers.get('location')!, a.url).toString();
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(other.token), 'tus-resumable': '1.0.0' } });
    expect(head.status).toBe(404);
    const patch = await tusPatch(url, other.token, 0, Buffer.alloc(10));
    expect(patch.status).toBe(404);
    expect(await tusOffset(url, owner.token)).toBe(0);
  });
});

describe('GET /shorts/jobs/:id/events (SSE)', () => {
  it('when the client reconnects with Last-Event-ID on another instance, then no event is missing and none is duplicated', async () => {
    const user = await signUp(a);
    const id = await uploadWhole(a.url, user.token, video, 'sse.mp4');
    const token = await sseToken(a, user.token, id);
    const first = await readSse(`${a.url}/shorts/jobs/${id}/events?token=${token}`, {}, (ev) => ev.length >= 3);
    const last = first.events.at(-1)!.id!;
    const second = await readSse(`${b.url}/shorts/jobs/${id}/events?token=${token}`, { 'last-event-id': last }, (ev) => ev.some((e) => ['DONE', 'FAILED'].includes(e.data.step)));
    const seen = [...first.events, ...second.events].map((e) => e.id);
    const all = (await readSse(`${b.url}/shorts/jobs/${id}/events`, bearer(user.token), (ev) => ev.some((e) => ['DONE', 'FAILED'].includes(e.data.step)))).events.map((e) => e.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all);
    expect(second.events.at(-1)!.data.step).toBe('DONE');
  }, 180000);

  it('when the token is missing or wrong-scoped, then 401; another user\'s job answers 404, and no event token is issued for it', async () => {
    const owner = await signUp(a);
    const other = await signUp(a);
    const id = await uploadWhole(a.url, owner.token, Buffer.from('not a video'), 'x.txt');
    expect((await fetch(`${a.url}/shorts/jobs/${id}/events`)).status).toBe(401);
    expect((await fetch(`${a.url}/shorts/jobs/${id}/events?token=${owner.token}`)).status).toBe(401);
    expect((await fetch(`${a.url}/shorts/jobs/${id}/events-token`, { method: 'POST', headers: bearer(other.token) })).status).toBe(404);
    expect((await fetch(`${a.url}/shorts/jobs/${id}/events`, { headers: bearer(other.token) })).status).toBe(404);
    expect((await fetch(`${a.url}/shorts/jobs/${id}`, { headers: bearer(other.token) })).status).toBe(404);
    expect((await fetch(`${a.url}/shorts/jobs/${id}/result`, { headers: bearer(other.token) })).status).toBe(404);
    expect((await fetch(`${a.url}/shorts/jobs/nope`, { headers: bearer(owner.token) })).status).toBe(404);
  });
});

describe('GET / (My page)', () => {
  it('serves the page and the tus client', async () => {
    const page = await fetch(`${a.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('My page');
    expect((await fetch(`${a.url}/web/tus.min.js`)).status).toBe(200);
    expect((await fetch(`${a.url}/web/..%2Fpackage.json`)).status).toBe(404);
  });
});
