/**
 * Hostile inputs against the real worker (a process from dist, its own ffmpeg), uploaded through a real
 * shop-api: playlists that name URLs or other files, a run over its wall-clock budget, and what a failed
 * job tells its user. Two queues: one worker with the default budget, one with a budget of one second.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSyntheticVideo, bearer, json, signUp, waitFor, type TestApi, readSse } from '#libs/testing';
import { ShortsService } from '../src/shorts/shorts.service.js';
import { startApi } from './support.js';
import { startWorker, uniqueQueue, uploadWhole, type WorkerProc } from './shorts-support.js';

const QUEUE = uniqueQueue('safety');
const SLOW_QUEUE = uniqueQueue('budget');
let api: TestApi;
let slowApi: TestApi;
let workers: WorkerProc[] = [];
let dir: string;
let video: Buffer;
let localTs: string;
let server: Server;
let hits = 0;
let port = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorts-safety-'));
  video = await readFile(await makeSyntheticVideo(join(dir, 'v60.mp4'), { seconds: 60 }));
  localTs = join(dir, 'local.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', join(dir, 'v60.mp4'), '-c', 'copy', '-f', 'mpegts', localTs]);
  server = createServer((_req, res) => {
    hits++;
    res.end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  [api, slowApi] = await Promise.all([startApi({ SHORTS_QUEUE: QUEUE, SHORTS_ATTEMPTS: '1' }), startApi({ SHORTS_QUEUE: SLOW_QUEUE })]);
  workers = [
    startWorker({ SHORTS_QUEUE: QUEUE, SHORTS_ATTEMPTS: '1', SHORTS_WORK_DIR: join(dir, 'work') }),
    startWorker({ SHORTS_QUEUE: SLOW_QUEUE, SHORTS_WORK_DIR: join(dir, 'work-slow'), SHORTS_JOB_TIMEOUT_BASE_S: '1', SHORTS_JOB_TIMEOUT_PER_VIDEO_S: '0' }),
  ];
}, 120000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await api?.close();
  await slowApi?.close();
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

const finished = (a: TestApi, token: string, id: string, timeoutMs = 60000) =>
  waitFor(async () => {
    const j = await json(await fetch(`${a.url}/shorts/jobs/${id}`, { headers: bearer(token) }));
    return ['DONE', 'FAILED'].includes(j.status) && j;
  }, timeoutMs, 200);

/** A user-facing reason: a fixed sentence, no path, no tool output. */
function expectSafeReason(reason: string) {
  expect(reason).not.toMatch(/[/\\]/);
  expect(reason).not.toMatch(/ffmpeg|ffprobe|exited|Invalid data|tmp|source|uploads|not found|ENOENT|\|/i);
}

/** Processes whose command line names this job (its work dir holds the id): ffmpeg, ffprobe, the runner. */
function processesOf(jobId: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(jobId)) out.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('shorts-worker against hostile inputs', () => {
  it('an HLS playlist pointing at a URL is refused without any network access', async () => {
    const user = await signUp(api);
    const playlist = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nhttp://127.0.0.1:${port}/x.ts\n#EXTINF:10.0,\nhttp://127.0.0.1:${port}/y.ts\n#EXT-X-ENDLIST\n`;
    const id = await uploadWhole(api.url, user.token, Buffer.from(playlist), 'holiday.mp4');
    const job = await finished(api, user.token, id);
    expect(job).toMatchObject({ status: 'FAILED', reason: 'not a video file', reasonCode: 'unsupported_input', attempt: 1 });
    // (ffmpeg 5.1 already limits a local playlist's segments to file,crypto,data; older or differently
    // built versions fetch them. The allowlist refuses the playlist before any segment is opened.)
    expect(hits).toBe(0);
  });

  it('an HLS playlist naming a file on the worker\'s disk is refused (no local file read)', async () => {
    // Without the demuxer allowlist this one succeeds: ffmpeg's hls demuxer allows file:// segments of a
    // local playlist, and the user would get shorts cut from a file of the worker's machine.
    const user = await signUp(api);
    const playlist = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:60\n#EXTINF:60.0,\nfile://${localTs}\n#EXT-X-ENDLIST\n`;
    const id = await uploadWhole(api.url, user.token, Buffer.from(playlist), 'holiday.mp4');
    expect(await finished(api, user.token, id)).toMatchObject({ status: 'FAILED', reason: 'not a video file', reasonCode: 'unsupported_input' });
  });

  it('a concat/other non-allowlisted demuxer file is refused', async () => {
    const user = await signUp(api);
    const inputs = [
      ['concat.mp4', `ffconcat version 1.0\nfile '${join(dir, 'v60.mp4')}'\nfile '/etc/passwd'\n`],
      ['frames.txt', `P1\n2 2\n0 1\n1 0\n`], // a PBM image: image2-family demuxers are not video
    ];
    const ids = await Promise.all(inputs.map(([name, body]) => uploadWhole(api.url, user.token, Buffer.from(body), name)));
    for (const id of ids) {
      const job = await finished(api, user.token, id);
      expect(job).toMatchObject({ status: 'FAILED', reason: 'not a video file', reasonCode: 'unsupported_input' });
    }
  });

  it('a real video still becomes shorts (the allowlist lets mp4 through)', async () => {
    const user = await signUp(api);
    const id = await uploadWhole(api.url, user.token, video, 'ok.mp4');
    expect(await finished(api, user.token, id, 120000)).toMatchObject({ status: 'DONE', reason: null, reasonCode: null });
  }, 150000);

  it('a job over its wall-clock budget is killed and FAILED', async () => {
    const user = await signUp(slowApi);
    const id = await uploadWhole(slowApi.url, user.token, video, 'long.mp4');
    const job = await finished(slowApi, user.token, id, 60000);
    expect(job).toMatchObject({ status: 'FAILED', reason: 'processing took too long and was stopped', reasonCode: 'time_limit', attempt: 1 });
    // Killed, not left running: no ffmpeg (nor the model process) for this job survives.
    expect(await waitFor(async () => processesOf(id).length === 0 && 'none', 10000, 200)).toBe('none');
    // Not retried: the budget would be spent again. The row turns FAILED before BullMQ moves the job to
    // its failed set (which is when attemptsMade counts the attempt), so wait for BullMQ's own verdict.
    const queue = slowApi.app.get(ShortsService).queue;
    const state = await waitFor(async () => ((await queue.getJobState(id)) === 'failed' ? 'failed' : false), 10000, 100);
    expect(state).toBe('failed');
    expect((await queue.getJob(id))?.attemptsMade).toBe(1);
  }, 90000);

  it('a failed job\'s reason contains no path and no ffmpeg stderr', async () => {
    const user = await signUp(api);
    // ffprobe's stderr for this input names the worker's temp path ("…/source: Invalid data found…").
    const notVideo = await uploadWhole(api.url, user.token, Buffer.from('garbage '.repeat(500)), 'x.mp4');
    // A third of an mp4: its index is missing, ffprobe's complaint names the file.
    const truncated = await uploadWhole(api.url, user.token, video.subarray(0, Math.floor(video.length / 3)), 'cut.mp4');
    for (const id of [notVideo, truncated]) {
      const job = await finished(api, user.token, id, 120000);
      expect(job).toMatchObject({ status: 'FAILED', reasonCode: expect.any(String) });
      expectSafeReason(job.reason);
      const events = await readSse(`${api.url}/shorts/jobs/${id}/events`, bearer(user.token), (ev) => ev.some((e) => e.data.step === 'FAILED'), 30000);
      for (const e of events.events) if (e.data.reason) expectSafeReason(e.data.reason);
    }
  }, 150000);

  it('a job whose processing fails for an internal reason tells the user a fixed sentence, not the error', async () => {
    const user = await signUp(api);
    const id = randomBytes(16).toString('hex');
    // A job row and queue entry whose source does not exist: the download fails with the storage's own
    // message (which names the key); the user must see only the fixed sentence.
    await api.app.get(ShortsService).createJob({ id, userId: user.id, fileName: 'ghost.mp4', sizeBytes: 1, sourceKey: `uploads/${id}/source` });
    const job = await finished(api, user.token, id);
    expect(job).toMatchObject({ status: 'FAILED', reason: 'processing failed after 1 attempt(s)', reasonCode: 'processing_failed' });
    expectSafeReason(job.reason);
  });
});
