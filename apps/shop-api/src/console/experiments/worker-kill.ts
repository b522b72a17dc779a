/**
 * Q2 at run time: a generated sample video goes through the shorts pipeline (object storage → queue →
 * worker: DOWNLOADING, GENERATING, STORING → DONE, each step an event on the job's progress stream), and the
 * worker is SIGKILLed mid-job. Its job lock lapses, a second worker's stalled check takes the job, reruns it
 * from the stored upload, and the job finishes ONCE: one DONE event, one archive.
 * The job runs on a queue of its own (`<SHORTS_QUEUE>-console-<run>`) with two workers the experiment spawns
 * from dist (child processes, short lock so the handover takes seconds): the stack's own worker is never
 * killed and never sees the job. So the file goes into object storage under the key the tus route writes
 * (an upload through the route would enqueue on the stack's queue). Everything is deleted afterwards: the
 * workers, the files, the queue and its streams (journaled).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { JobProgressStream, SHORTS_JOB_NAME, shortsJobOptions, shortsKeys, type StoredProgressEvent } from '#libs/shorts-jobs';
import { exited, startChild } from './children.js';
import { assertTime, preset, sleep, until, type Experiment, type ExperimentContext } from './experiment.js';

const VIDEO = 60; // seconds (the model needs 3 shorts of at least 15 s)
const KILL_AT_PERCENT = 20;
const LOCK_MS = 3000;
/** The only queues and job ids this experiment creates (checked again before a journaled cleanup runs). */
export const CONSOLE_QUEUE = /^[\w.-]+-console-[0-9a-f]{6}$/;
export const CONSOLE_JOB = /^[0-9a-f]{32}$/;

/** A sample video the pipeline accepts: ffmpeg's test pattern and a tone (what libs/testing's generator makes). */
async function sampleVideo(file: string, seconds: number): Promise<void> {
  await promisify(execFile)('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=320x180:rate=15:duration=${seconds},hue=H=2*PI*floor(t/7)/5`,
    '-f', 'lavfi', '-i', `aevalsrc=sin(440*2*PI*t)*(0.05+0.9*gt(mod(t\\,20)\\,14)):s=22050:d=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '32', '-g', '30', '-c:a', 'aac', '-b:a', '48k', '-shortest', file,
  ]);
}

/** Removes a console run's queue, its progress streams and the job's files. */
export async function deleteShortsRun(ctx: Pick<ExperimentContext, 'storage' | 'redis'>, queue: string, jobId: string): Promise<void> {
  if (!CONSOLE_QUEUE.test(queue) || !CONSOLE_JOB.test(jobId)) throw new Error(`refusing to delete ${queue}/${jobId}: not a console run`);
  const q = new Queue(queue, { connection: ctx.redis.queue });
  try {
    await q.obliterate({ force: true });
  } finally {
    await q.close();
  }
  const progress = new JobProgressStream(ctx.redis.queue, queue);
  await ctx.redis.queue.del(progress.jobKey(jobId), progress.feedKey);
  for (const o of [...(await ctx.storage.list(shortsKeys.uploadPrefix(jobId))), ...(await ctx.storage.list(`results/${jobId}/`))]) await ctx.storage.delete(o.key);
}

export const workerKill: Experiment = {
  name: 'worker-kill',
  title: 'Q2 · kill the worker mid-job',
  explain: `A generated ${VIDEO} s video through the shorts pipeline; its worker is SIGKILLed at ${KILL_AT_PERCENT} %: a second worker takes the job over and it finishes once (one DONE, one archive).`,
  doc: 'docs/q2-shorts-service.md',
  seconds: 35,
  async run(ctx) {
    const VIDEO_S = preset(ctx, VIDEO, 48);
    const run = randomBytes(3).toString('hex');
    const queue = `${ctx.config.shorts.queue}-console-${run}`;
    const jobId = randomBytes(16).toString('hex');
    const dir = await mkdtemp(join(tmpdir(), 'console-worker-kill-'));
    ctx.undo('delete the sample video and the workers’ temp files', () => rm(dir, { recursive: true, force: true }));
    const cleanup = await ctx.durableUndo('delete the sample job’s files, queue and progress streams', { kind: 'delete-shorts-run', queue, jobId });
    const progress = new JobProgressStream(ctx.redis.queue, queue);
    const q = new Queue(queue, { connection: ctx.redis.queue });
    ctx.undo('close the queue client', () => q.close());
    q.on('error', () => undefined);

    const startWorker = async (label: string) => {
      const child = await startChild(ctx, `worker ${label}`, 'apps/shorts-worker/src/main.js', queue, {
        SHORTS_QUEUE: queue,
        SHORTS_WORK_DIR: join(dir, 'work'),
        SHORTS_LOCK_MS: String(LOCK_MS),
        SHORTS_STALLED_INTERVAL_MS: '1000',
      });
      ctx.progress(`worker ${label} started (pid ${child.pid}) on queue ${queue}`);
      return child;
    };

    assertTime(ctx, 30_000);
    ctx.progress(`generating a ${VIDEO_S} s sample video (ffmpeg) and storing it at ${shortsKeys.source(jobId)}`);
    const file = join(dir, 'sample.mp4');
    await sampleVideo(file, VIDEO_S);
    await ctx.storage.put(shortsKeys.source(jobId), createReadStream(file));
    const t0 = Date.now();
    const first = await startWorker('A');
    await q.add(SHORTS_JOB_NAME, { jobId, userId: '0', sourceKey: shortsKeys.source(jobId) }, shortsJobOptions(jobId, 3));
    ctx.progress(`job ${jobId} queued; watching its progress stream until GENERATING passes ${KILL_AT_PERCENT} %`);
    const reached = await until(async () => (await progress.after(jobId)).some((e) => e.event.step === 'GENERATING' && e.event.percent >= KILL_AT_PERCENT), Math.max(1000, ctx.deadline - Date.now() - 20_000), ctx.signal);
    if (!reached) {
      const last = (await progress.after(jobId)).at(-1)?.event;
      throw new Error(`the job did not reach GENERATING ${KILL_AT_PERCENT} % in time (last event: ${last ? `${last.step} ${last.percent} %${last.reasonCode ? ` ${last.reasonCode}: ${last.reason}` : ''}` : 'none'})`);
    }
    const beforeKill = await progress.after(jobId);
    const killedAt = beforeKill.at(-1)?.event;
    const crashed = beforeKill.find((e) => e.event.step === 'GENERATING')?.event.worker;
    first.kill('SIGKILL');
    await exited(first);
    const tKill = Date.now();
    ctx.progress(`worker A SIGKILLed at ${killedAt?.step} ${killedAt?.percent} %; starting worker B`);
    const second = await startWorker('B');
    let events: StoredProgressEvent[] = [];
    const done = await until(async () => (events = await progress.after(jobId)).some((e) => e.event.step === 'DONE' || e.event.step === 'FAILED'), Math.max(1000, ctx.deadline - Date.now() - 4000), ctx.signal);
    if (!done) throw new Error('the job did not finish after the kill');
    await sleep(1500, ctx.signal); // room for a (wrong) second completion to show up
    events = await progress.after(jobId);
    const doneEvents = events.filter((e) => e.event.step === 'DONE');
    const archives = await ctx.storage.list(`results/${jobId}/`);
    const job = await q.getJob(jobId);
    const resumed = events.find((e) => Number(e.id.split('-')[0]) > tKill && e.event.worker !== crashed);
    second.kill('SIGTERM');
    await exited(second);
    await cleanup();
    const rel = (e: StoredProgressEvent) => Number(e.id.split('-')[0]) - t0;
    // The panel: the first event of each step on each worker (GENERATING reports every few %), the kill, the end.
    const shown = events.filter((e, i) => i === 0 || e.event.step !== events[i - 1].event.step || e.event.worker !== events[i - 1].event.worker || i === events.length - 1);
    const killAt = shown.findIndex((e) => Number(e.id.split('-')[0]) > tKill);
    const rows: Record<string, string | number | null>[] = shown.map((e) => ({
      't ms': rel(e),
      step: e.event.step,
      percent: e.event.percent,
      worker: e.event.worker === crashed ? 'A (killed)' : e.event.worker ? 'B' : '—',
      attempt: e.event.attempt ?? null,
    }));
    rows.splice(killAt < 0 ? rows.length : killAt, 0, { 't ms': tKill - t0, step: 'SIGKILL worker A', percent: killedAt?.percent ?? null, worker: 'A', attempt: null });
    return {
      name: this.name,
      doc: this.doc,
      rows,
      numbers: {
        videoS: VIDEO_S,
        killedAtPercent: killedAt?.percent ?? null,
        doneEvents: doneEvents.length,
        failedEvents: events.filter((e) => e.event.step === 'FAILED').length,
        archives: archives.length,
        finishedByOtherWorker: doneEvents[0] && doneEvents[0].event.worker !== crashed ? 1 : 0,
        takeoverMs: resumed ? Number(resumed.id.split('-')[0]) - tKill : null,
        totalMs: doneEvents[0] ? rel(doneEvents[0]) : null,
        bullmqFinished: job?.finishedOn ? 1 : 0,
      },
      headline: `Worker A was SIGKILLed at ${killedAt?.step ?? '—'} ${killedAt?.percent ?? '—'} %; worker B took the job over ${resumed ? Number(resumed.id.split('-')[0]) - tKill : '—'} ms later and it finished with ${doneEvents.length} DONE event and ${archives.length} archive (${events.length} events in all).`,
    };
  },
};
