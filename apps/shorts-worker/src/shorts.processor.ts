/**
 * ShortsProcessor: a stateless BullMQ worker on the shorts queue. Per job: DOWNLOADING (the upload streams
 * from object storage into the model's process, which spools it once), GENERATING (from the model's probe
 * on, percent relayed),
 * STORING (the archive to results/<jobId>/shorts.zip: a rerun overwrites the same key, so retries and
 * crash-recoveries are idempotent), DONE — or FAILED with a fixed sentence and a stable code (FailureCode):
 * paths, tool output and error text go to this worker's log with the job id, never into the event.
 * Every step is an event on JobProgressStream; this process never touches the database.
 * Wall clock: a model run may take SHORTS_JOB_TIMEOUT_BASE_S + SHORTS_JOB_TIMEOUT_PER_VIDEO_S x the
 * video's duration (known once the runner has probed it); past that the run is killed (ffmpeg with
 * SIGKILL, then the runner) and the job FAILED with 'time_limit', without retries.
 * Crash safety: the job lock (SHORTS_LOCK_MS) lapses when a worker dies and BullMQ's stalled check hands
 * the job to another worker; transient errors retry with exponential backoff; bad input does not retry.
 * Trade-off: a crash mid-GENERATING redoes the whole model run (no checkpoints inside the model).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { LOGGER, createRedis, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';
import type { FailureCode } from '#libs/shorts-model';
import { JobProgressStream, shortsKeys, type JobStep, type ShortsJobData } from '#libs/shorts-jobs';
import type { RunnerMessage, RunnerRequest } from './model-runner.js';

/** The job cannot succeed (bad input, over its time budget): FAILED at once, no retries. */
class FinalError extends Error {
  constructor(
    message: string,
    readonly code: FailureCode,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** A model run that failed for another reason: `detail` is for the log only. */
class RunError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export const TIME_LIMIT_REASON = 'processing took too long and was stopped';

@Injectable()
export class ShortsProcessor implements OnModuleInit, OnApplicationShutdown {
  private worker?: Worker;
  private readonly children = new Set<ChildProcess>();
  private readonly workerName = `${hostname()}-${process.pid}`;
  readonly workRoot: string;

  constructor(
    private readonly config: Settings,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly storage: ObjectStorage,
    private readonly progress: JobProgressStream,
  ) {
    this.workRoot = config.shorts.workDir || join(tmpdir(), 'mallscale-shorts');
  }

  async onModuleInit(): Promise<void> {
    await this.removeStaleWorkDirs();
    await this.storage.ensureReady();
    // BullMQ needs maxRetriesPerRequest: null on worker connections (blocking commands must not time out).
    const connection = createRedis(this.config.redis.queue, { maxRetriesPerRequest: null, connectionName: 'shorts-worker' });
    this.worker = new Worker(this.config.shorts.queue, (job) => this.process(job), {
      connection,
      concurrency: this.config.shorts.concurrency,
      lockDuration: this.config.shorts.lockMs,
      stalledInterval: this.config.shorts.stalledIntervalMs,
      maxStalledCount: 2,
      autorun: true,
    });
    this.worker.on('error', (err) => this.logger.error({ err }, 'worker error'));
  }

  private emit(job: Job<ShortsJobData>, step: JobStep, percent: number, extra: { reason?: string; reasonCode?: FailureCode; resultKey?: string } = {}) {
    return this.progress.append({ jobId: job.data.jobId, step, percent, attempt: job.attemptsMade + 1, worker: this.workerName, ...extra });
  }

  async process(job: Job<ShortsJobData>): Promise<{ resultKey: string }> {
    const { jobId, sourceKey } = job.data;
    const dir = join(this.workRoot, `${process.pid}-${jobId}-${job.attemptsMade}`);
    this.logger.info({ jobId, attempt: job.attemptsMade + 1 }, 'shorts job started');
    try {
      await rm(dir, { recursive: true, force: true });
      await mkdir(join(dir, 'out'), { recursive: true });
      await this.emit(job, 'DOWNLOADING', 0);
      // The source streams from object storage into the model (its process's stdin): no copy on this side.
      const source = await this.storage.get(sourceKey);
      const archivePath = await this.runModel(jobId, source, join(dir, 'out'), async (p) => {
        await this.emit(job, 'GENERATING', 5 + Math.floor(p * 0.9));
      }, async () => {
        await this.emit(job, 'GENERATING', 5);
      });
      await this.emit(job, 'STORING', 95);
      const resultKey = shortsKeys.result(jobId);
      await this.storage.put(resultKey, createReadStream(archivePath), { contentType: 'application/zip', length: (await stat(archivePath)).size });
      await this.emit(job, 'DONE', 100, { resultKey });
      this.logger.info({ jobId }, 'shorts job done');
      return { resultKey };
    } catch (e) {
      const detail = (e as { detail?: string }).detail;
      if (e instanceof FinalError) {
        this.logger.warn({ jobId, code: e.code, detail }, 'shorts job failed');
        await this.emit(job, 'FAILED', 100, { reason: e.message, reasonCode: e.code });
        throw new UnrecoverableError(e.code);
      }
      this.logger.warn({ jobId, attempt: job.attemptsMade + 1, detail, err: e }, 'shorts job attempt failed');
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) {
        await this.emit(job, 'FAILED', 100, { reason: `processing failed after ${attempts} attempt(s)`, reasonCode: 'processing_failed' });
      } else {
        await this.emit(job, 'RETRYING', 0, { reason: `attempt ${job.attemptsMade + 1} failed, retrying` });
      }
      throw e;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Runs the model in its own process, `input` piped to its stdin; resolves with the archive path. The
   * wall-clock budget starts at the base (download to probe) and grows to base + factor x duration once
   * the runner reports the probe (the input is then downloaded: `onDownloaded`).
   */
  private runModel(jobId: string, input: Readable, outputDir: string, onProgress: (percent: number) => Promise<void>, onDownloaded: () => Promise<void>): Promise<string> {
    const child = fork(new URL('./model-runner.js', import.meta.url), [], { stdio: ['pipe', 'inherit', 'inherit', 'ipc'] });
    this.children.add(child);
    const s = this.config.shorts;
    const req: RunnerRequest = { outputDir, model: { minWindowS: s.minWindowS, maxWindowS: s.maxWindowS, maxHeight: s.maxShortHeight, threads: s.modelThreads } };
    const started = Date.now();
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let probed = false;
      let chain = Promise.resolve();
      let budgetS = s.jobTimeoutBaseS;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(overBudget, Math.max(0, started + budgetS * 1000 - Date.now()));
      };
      const overBudget = () => {
        if (settled) return;
        settled = true;
        this.logger.warn({ jobId, budgetS, elapsedS: (Date.now() - started) / 1000 }, 'model run over its wall-clock budget: killed');
        this.kill(child);
        reject(new FinalError(TIME_LIMIT_REASON, 'time_limit'));
      };
      arm();
      child.on('message', (m: RunnerMessage) => {
        if (settled) return;
        // Progress counts from the probe on (before it, the runner is still receiving the download).
        if (m.type === 'progress') {
          if (probed) chain = chain.then(() => onProgress(m.percent)).catch(() => undefined);
        } else if (m.type === 'probed') {
          probed = true;
          budgetS = s.jobTimeoutBaseS + s.jobTimeoutPerVideoSecond * m.durationS;
          arm();
          chain = chain.then(onDownloaded).catch(() => undefined);
        } else if (m.type === 'done') {
          settled = true;
          clearTimeout(timer);
          chain.then(() => resolve(m.archivePath), reject);
        } else {
          settled = true;
          clearTimeout(timer);
          reject(m.inputError ? new FinalError(m.message, m.code ?? 'unsupported_input', m.detail) : new RunError(m.message, m.detail));
        }
      });
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        clearTimeout(timer);
        if (!settled) reject(new RunError(`the model process exited unexpectedly (${signal ?? code})`));
        settled = true;
      });
      child.send(req);
      // A storage read that fails mid-stream fails the run; a pipe the runner closed early (it refused the
      // input, or died) is reported by the runner's own message or its exit, not here.
      pipeline(input, child.stdin!).catch((err: NodeJS.ErrnoException) => {
        if (settled || err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
        settled = true;
        clearTimeout(timer);
        this.kill(child);
        reject(new RunError('reading the source failed', err.message));
      });
    });
  }

  /**
   * Stops a model run: closing the IPC channel makes the runner abort the model (its ffmpeg processes get
   * SIGKILL); the runner itself gets SIGKILL if it has not exited a moment later (a model stuck in JS).
   */
  private kill(child: ChildProcess): void {
    if (child.connected) child.disconnect();
    setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, 1000).unref();
  }

  /** Temp dirs of processes that no longer exist (a SIGKILLed worker cannot clean up after itself). */
  private async removeStaleWorkDirs(): Promise<void> {
    await mkdir(this.workRoot, { recursive: true });
    for (const name of await readdir(this.workRoot)) {
      const pid = Number(name.split('-')[0]);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) await rm(join(this.workRoot, name), { recursive: true, force: true });
    }
  }

  /**
   * Graceful shutdown: stop taking jobs and let the running ones finish for up to 30 s; after that kill the
   * model processes and close forcibly — the job's lock lapses and another worker reruns it (idempotent).
   */
  async onApplicationShutdown(): Promise<void> {
    if (!this.worker) return;
    const closed = this.worker.close();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30000).unref());
    if ((await Promise.race([closed, timer])) === 'timeout') {
      for (const c of this.children) c.kill('SIGKILL');
      await this.worker.close(true);
    }
  }
}
