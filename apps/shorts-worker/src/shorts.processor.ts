/**
 * ShortsProcessor: a stateless BullMQ worker on the shorts queue. Per job: DOWNLOADING (stream the upload
 * from object storage to a private temp dir), GENERATING (the model in a child process, percent relayed),
 * STORING (the archive to results/<jobId>/shorts.zip: a rerun overwrites the same key, so retries and
 * crash-recoveries are idempotent), DONE — or FAILED with a sentence a user can read. Every step is an
 * event on JobProgressStream; this process never touches the database.
 * Crash safety: the job lock (SHORTS_LOCK_MS) lapses when a worker dies and BullMQ's stalled check hands
 * the job to another worker; transient errors retry with exponential backoff; bad input does not retry.
 * Trade-off: a crash mid-GENERATING redoes the whole model run (no checkpoints inside the model).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { createRedis, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';
import { JobProgressStream, type JobStep } from '#libs/shorts-model';
import type { RunnerMessage, RunnerRequest } from './model-runner.js';

export const LOGGER = Symbol('LOGGER');

export interface ShortsJobData {
  jobId: string;
  userId: string;
  sourceKey: string;
}

export const resultKeyOf = (jobId: string) => `results/${jobId}/shorts.zip`;

class InputError extends Error {}

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
    const connection = createRedis(this.config.redis.queueUrl, { maxRetriesPerRequest: null, connectionName: 'shorts-worker' });
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

  private emit(job: Job<ShortsJobData>, step: JobStep, percent: number, extra: { reason?: string; resultKey?: string } = {}) {
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
      const input = join(dir, 'source');
      await pipeline(await this.storage.get(sourceKey), createWriteStream(input));
      await this.emit(job, 'GENERATING', 5);
      const archivePath = await this.runModel(input, join(dir, 'out'), async (p) => {
        await this.emit(job, 'GENERATING', 5 + Math.floor(p * 0.9));
      });
      await this.emit(job, 'STORING', 95);
      const resultKey = resultKeyOf(jobId);
      await this.storage.put(resultKey, createReadStream(archivePath), { contentType: 'application/zip', length: (await stat(archivePath)).size });
      await this.emit(job, 'DONE', 100, { resultKey });
      this.logger.info({ jobId }, 'shorts job done');
      return { resultKey };
    } catch (e) {
      const message = (e as Error).message;
      if (e instanceof InputError) {
        await this.emit(job, 'FAILED', 100, { reason: message });
        throw new UnrecoverableError(message);
      }
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) {
        await this.emit(job, 'FAILED', 100, { reason: `processing failed after ${attempts} attempt(s): ${message}` });
      } else {
        await this.emit(job, 'RETRYING', 0, { reason: `attempt ${job.attemptsMade + 1} failed, retrying: ${message}` });
      }
      this.logger.warn({ jobId, err: e }, 'shorts job attempt failed');
      throw e;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Runs the model in its own process; resolves with the archive path. */
  private runModel(input: string, outputDir: string, onProgress: (percent: number) => Promise<void>): Promise<string> {
    const child = fork(new URL('./model-runner.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.children.add(child);
    const s = this.config.shorts;
    const req: RunnerRequest = { input, outputDir, model: { minWindowS: s.minWindowS, maxWindowS: s.maxWindowS, maxHeight: s.maxShortHeight, threads: s.modelThreads } };
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let chain = Promise.resolve();
      child.on('message', (m: RunnerMessage) => {
        if (m.type === 'progress') chain = chain.then(() => onProgress(m.percent)).catch(() => undefined);
        else if (m.type === 'done') {
          settled = true;
          chain.then(() => resolve(m.archivePath), reject);
        } else {
          settled = true;
          reject(m.inputError ? new InputError(m.message) : new Error(m.message));
        }
      });
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        if (!settled) reject(new Error(`the model process exited unexpectedly (${signal ?? code})`));
      });
      child.send(req);
    });
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
