/**
 * Worker crash: SIGKILL the only worker while the model is GENERATING. Its job lock lapses, a second
 * worker's stalled check takes the job, reruns it from the stored upload, and the job completes once:
 * one DONE event, one archive, and the dead worker's temp files are swept by the next worker.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { createRedis, repoRoot } from '#libs/core';
import { testConfig, testEnv, waitFor, makeSyntheticVideo } from '#libs/testing';
import { JobProgressStream } from '#libs/shorts-jobs';
import { createStorage } from '#libs/storage';

const QUEUE = `shorts-chaos-${randomUUID().slice(0, 8)}`;
const config = testConfig({ SHORTS_QUEUE: QUEUE });
const redis = createRedis(config.redis.queueUrl, { maxRetriesPerRequest: null });
const storage = createStorage(config.storage);
const progress = new JobProgressStream(redis, QUEUE);
const queue = new Queue(QUEUE, { connection: redis });
let dir: string;
const children: ChildProcess[] = [];

function startWorker(workDir: string): ChildProcess {
  const child = spawn(process.execPath, [join(repoRoot(), 'dist/apps/shorts-worker/src/main.js')], {
    cwd: repoRoot(),
    env: { ...process.env, ...testEnv(), NODE_OPTIONS: '', LOG_LEVEL: 'warn', SHORTS_QUEUE: QUEUE, SHORTS_WORK_DIR: workDir, SHORTS_LOCK_MS: '3000', SHORTS_STALLED_INTERVAL_MS: '1000' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'worker-chaos-'));
  await storage.ensureReady();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await queue.close();
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
});

describe('ShortsProcessor', () => {
  it('when the worker is SIGKILLed during GENERATING, then another worker completes the job exactly once, with one archive', async () => {
    const id = randomBytes(16).toString('hex');
    const video = await makeSyntheticVideo(join(dir, 'v.mp4'), { seconds: 60 });
    const sourceKey = `uploads/${id}/source`;
    await storage.put(sourceKey, createReadStream(video));
    const workDir = join(dir, 'work');
    const first = startWorker(workDir);
    await queue.add('generate', { jobId: id, userId: '1', sourceKey }, { jobId: id, attempts: 3, backoff: { type: 'exponential', delay: 500 } });

    await waitFor(async () => (await progress.after(id)).some((e) => e.event.step === 'GENERATING' && e.event.percent >= 20), 120000, 100);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const crashedWorker = (await progress.after(id)).find((e) => e.event.step === 'GENERATING')!.event.worker;
    expect(await readdir(workDir)).not.toEqual([]); // the killed worker could not clean up

    startWorker(workDir);
    const events = await waitFor(async () => {
      const evs = await progress.after(id);
      return evs.some((e) => e.event.step === 'DONE') && evs;
    }, 180000, 250);
    await new Promise((r) => setTimeout(r, 1500)); // room for a (wrong) second completion to show up
    const all = await progress.after(id);
    expect(all.filter((e) => e.event.step === 'DONE')).toHaveLength(1);
    const done = events.find((e) => e.event.step === 'DONE')!.event;
    expect(done.worker).not.toBe(crashedWorker);
    expect(await storage.list(`results/${id}/`)).toEqual([{ key: `results/${id}/shorts.zip`, size: expect.any(Number) }]);
    expect((await queue.getJob(id))?.finishedOn).toBeDefined();
    expect(await readdir(workDir)).toEqual([]);
  }, 300000);
});
