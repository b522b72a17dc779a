// Scenario `shorts` (issue 7, seed Q2): three measurements of the shorts service, Node only (`run`).
//   model — the reference FfmpegShortsModel on a 10-minute 1280x720 synthetic video (lavfi, generated once
//           and cached under var/bench/): wall time / video length (goal ≤ 0.2 on 2 cores), per stage.
//   jobs  — jobs per hour through the real pipeline (tus upload to shop-api → queue → shorts-worker
//           processes → DONE event) with 1 and with 2 workers; each worker gets cores / workers model threads.
//   sse   — N concurrent SSE streams (default 1,000) on ONE shop-api instance; this process plays the worker
//           (appends events with JobProgressStream) and the browsers (node:http readers). Delivery latency
//           = receipt time − the event's `at` (same machine, same clock); goal p99 ≤ 100 ms. Also counts
//           missing / duplicated events per stream.
// Flags: --parts model,jobs,sse  --model-seconds 600 --model-size 1280x720  --jobs 6 --job-seconds 60
//        --job-size 640x360 --workers 1,2  --sse-streams 1000 --sse-jobs 100 --sse-duration 15s --sse-rate 1
// Short run: npm run bench -- shorts --model-seconds 120 --jobs 2 --sse-streams 200 --sse-duration 5s
// Workers curve: npm run bench -- shorts --parts jobs --workers 1,2,3 --out load-tests/results/shorts-workers.json
//   (3 workers on 2 cores get 1 model thread each: oversubscribed on purpose, the point past the cores)
// Needs the dev databases migrated (npm run migrate) and ffmpeg. k6 has no EventSource: no k6 script.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import mysql from 'mysql2/promise';
import { createRedis, loadConfig } from '#libs/core';
import { JobProgressStream } from '#libs/shorts-jobs';
import { FfmpegShortsModel } from '#libs/shorts-model';
import { makeSyntheticVideo, openSse } from '#libs/testing';
import type { DemoPreset, ModeResult, Scenario } from '../runner/bench.js';
import { runOnly, untyped } from './support.js';
export default {
  name: 'shorts',
  description: 'shorts service: model wall/length on 10 min 720p, jobs/hour with 1 and 2 workers, 1,000 SSE streams delivery latency',
  ...runOnly,

  schema: true,
  async run(ctx, opts) {
    const parts = (opts.parts ?? 'model,jobs,sse').split(',');
    const secs = (s: string) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(s));
      return m ? Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1) : Number(s);
    };
    const pct = (xs: number[], p: number) => {
      if (!xs.length) return 0;
      const s = [...xs].sort((a, b) => a - b);
      return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
    };
    const r2 = (x: number) => Math.round(x * 100) / 100;
    const tables: string[] = [];
    const ratios: Record<string, number> = {};
    const modes: Record<string, ModeResult> = {};
    const details: Record<string, unknown> = {};
    const benchDir = join(ctx.root, 'var/bench');
    await mkdir(benchDir, { recursive: true });

    const cachedVideo = async (seconds: number, size: string) => {
      const file = join(benchDir, `synthetic-${seconds}s-${size}.mp4`);
      if (existsSync(file)) return file;
      ctx.log(`generating a ${seconds} s ${size} synthetic video (lavfi; cached in ${file})…`);
      await makeSyntheticVideo(`${file}.tmp.mp4`, { seconds, size, fps: 25 });
      await rename(`${file}.tmp.mp4`, file);
      return file;
    };

    // ---------------------------------------------------------------- model
    if (parts.includes('model')) {
      const seconds = Number(opts['model-seconds'] ?? 600);
      const size = opts['model-size'] ?? '1280x720';
      const threads = Number(opts['model-threads'] ?? 2);
      const video = await cachedVideo(seconds, size);
      const out = await mkdtemp(join(benchDir, 'model-out-'));
      try {
        const m = new FfmpegShortsModel({ threads });
        ctx.log(`model: ${seconds} s ${size}, ${threads} threads…`);
        const t0 = performance.now();
        const { stages, windows } = await m.generate(createReadStream(video), out);
        const wall = (performance.now() - t0) / 1000;
        const rows = Object.entries(stages).map(([s, v]) => `| ${s} | ${v.toFixed(1)} | ${((v / wall) * 100).toFixed(0)} % |`);
        tables.push(
          [
            `### model: ${seconds} s ${size} synthetic video, ${threads} threads (goal wall / length ≤ 0.2)`,
            '',
            '| stage | seconds | share |',
            '|---|---:|---:|',
            ...rows,
            `| **total** | **${wall.toFixed(1)}** | |`,
            '',
            `wall / video length = **${(wall / seconds).toFixed(3)}**; windows ${windows.map((w) => `${w.startS}–${w.endS} s`).join(', ')}`,
          ].join('\n'),
        );
        ratios.model_wall_per_video_length = Math.round((wall / seconds) * 1000) / 1000;
        details.model = { seconds, size, threads, wallS: r2(wall), stages, windows };
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    }

    if (!parts.includes('jobs') && !parts.includes('sse')) return { modes, ratios, tables, details };

    // ---------------------------------------------------------------- the API (one instance) and a user
    const config = loadConfig();
    const db = untyped(await mysql.createConnection(config.db.primary.url));
    const [cols] = await db.query("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'shorts_jobs' AND COLUMN_NAME = 'queue'");
    await db.end();
    if (!Number(cols[0].n)) throw new Error('the dev catalog database lacks shorts_jobs.queue: run `npm run migrate` first');
    const queue = `bench-shorts-${randomUUID().slice(0, 8)}`;
    // One user creates up to --sse-jobs uploads (100) from 127.0.0.1 and opens every stream: far over the default upload,
    // active-job and stream limits, which are not what this measures.
    const apiEnv = { SHORTS_QUEUE: queue, SHORTS_SWEEP_INTERVAL_MS: '0', SHORTS_SSE_HEARTBEAT_MS: '15000', RATE_LIMIT_UPLOAD_USER_MAX: '0', RATE_LIMIT_UPLOAD_IP_MAX: '0', SHORTS_MAX_ACTIVE_JOBS_PER_USER: '1000', SHORTS_MAX_SSE_STREAMS_PER_USER: '10000' };
    const api = await ctx.startTarget!({ target: 'api', env: apiEnv });
    const redis = createRedis(config.redis.queueUrl, { connectionName: 'bench-shorts' });
    const progress = new JobProgressStream(redis, queue);
    const j = async (res: Response): Promise<any> => {
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      return body;
    };
    const newUser = async () => {
      const creds = { email: `bench-${randomUUID().slice(0, 12)}@example.test`, password: 'password-123' };
      const post = (path: string) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(creds) });
      await j(await post('/auth/sign-up'));
      return (await j(await post('/auth/sign-in'))).accessToken;
    };
    const upload = async (token: string, data: Buffer, name: string) => {
      const created = await fetch(`${api.url}/shorts/uploads`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-length': String(data.length), 'upload-metadata': `filename ${Buffer.from(name).toString('base64')}` },
      });
      if (created.status !== 201) throw new Error(`tus create ${created.status}`);
      const url = new URL(created.headers.get('location') ?? '', api.url).toString();
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        body: new Uint8Array(data),
      });
      if (res.status !== 204) throw new Error(`tus patch ${res.status}`);
      return url.split('/').pop() ?? '';
    };
    const workers: Array<{ stop: () => Promise<unknown> }> = [];
    const startWorker = (env: Record<string, string>) => {
      const child = spawn(process.execPath, [join(ctx.root, 'dist/apps/shorts-worker/src/main.js')], {
        cwd: ctx.root,
        env: { ...process.env, LOG_LEVEL: 'warn', ...apiEnv, ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const exited = new Promise((r) => child.once('exit', r));
      const w = { child, stop: async () => (child.exitCode === null && child.kill('SIGTERM'), await exited) };
      workers.push(w);
      return w;
    };

    try {
      // -------------------------------------------------------------- jobs per hour
      if (parts.includes('jobs')) {
        const n = Number(opts.jobs ?? 6);
        const jobSeconds = Number(opts['job-seconds'] ?? 60);
        const jobSize = opts['job-size'] ?? '640x360';
        const data = await readFile(await cachedVideo(jobSeconds, jobSize));
        const counts = String(opts.workers ?? '1,2').split(',').map(Number);
        const rows: string[] = [];
        for (const k of counts) {
          const threads = Math.max(1, Math.floor(cpus().length / k));
          const ws = Array.from({ length: k }, () => startWorker({ SHORTS_MODEL_THREADS: String(threads) }));
          await sleep(1500); // let the workers connect before the clock starts
          const token = await newUser();
          ctx.log(`jobs: ${n} × ${jobSeconds} s ${jobSize} with ${k} worker(s), ${threads} model thread(s) each…`);
          const t0 = Date.now();
          const ids = await Promise.all(Array.from({ length: n }, (_, i) => upload(token, data, `bench-${i}.mp4`)));
          const deadline = Date.now() + Number(opts['jobs-timeout-s'] ?? 900) * 1000;
          let ends: Array<{ start: number; done: number }>;
          for (;;) {
            const streams = await Promise.all(ids.map((id) => progress.after(id)));
            const last = streams.map((s) => s.at(-1)?.event);
            const failed = last.find((e) => e?.step === 'FAILED');
            if (failed) throw new Error(`job ${failed.jobId} FAILED: ${failed.reason}`);
            if (last.every((e) => e?.step === 'DONE')) {
              ends = streams.map((s) => ({ start: s.find((e) => e.event.step === 'DOWNLOADING')?.event.at ?? NaN, done: s.at(-1)!.event.at }));
              break;
            }
            if (Date.now() > deadline) throw new Error(`jobs did not finish in time (${last.map((e) => e?.step).join(',')})`);
            await sleep(250);
          }
          const elapsed = (Math.max(...ends.map((e) => e.done)) - t0) / 1000;
          const perJob = ends.map((e) => (e.done - e.start) / 1000);
          const jph = (n / elapsed) * 3600;
          rows.push(`| ${k} | ${threads} | ${n} | ${elapsed.toFixed(1)} | ${r2(perJob.reduce((a, b) => a + b, 0) / n)} | **${Math.round(jph)}** |`);
          ratios[`jobs_per_hour_${k}_worker${k > 1 ? 's' : ''}`] = Math.round(jph);
          details[`jobs_${k}`] = { n, jobSeconds, jobSize, threadsPerWorker: threads, elapsedS: r2(elapsed), perJobS: perJob.map(r2) };
          await Promise.all(ws.map((w) => w.stop()));
        }
        if (ratios.jobs_per_hour_1_worker && ratios.jobs_per_hour_2_workers) ratios.jobs_2_vs_1_workers = r2(ratios.jobs_per_hour_2_workers / ratios.jobs_per_hour_1_worker);
        tables.push(
          [
            `### jobs per hour (${opts['job-seconds'] ?? 60} s ${opts['job-size'] ?? '640x360'} videos, all uploaded at once; one shop-api, workers on this ${cpus().length}-core box)`,
            '',
            '| workers | model threads each | jobs | first upload → last DONE (s) | mean job DOWNLOADING → DONE (s) | jobs / hour |',
            '|---:|---:|---:|---:|---:|---:|',
            ...rows,
          ].join('\n'),
        );
      }

      // -------------------------------------------------------------- 1,000 SSE streams on one instance
      if (parts.includes('sse')) {
        const streams = Number(opts['sse-streams'] ?? 1000);
        const jobsN = Math.min(streams, Number(opts['sse-jobs'] ?? 100));
        const durationS = secs(opts['sse-duration'] ?? '15s');
        const rate = Number(opts['sse-rate'] ?? 1); // events per second per job
        const token = await newUser();
        ctx.log(`sse: ${jobsN} jobs (tiny uploads, no worker on this queue), ${streams} streams…`);
        const ids: string[] = [];
        for (let i = 0; i < jobsN; i += 20) ids.push(...(await Promise.all(Array.from({ length: Math.min(20, jobsN - i) }, (_, k) => upload(token, Buffer.from(`sse ${i + k}`), `sse-${i + k}.txt`)))));
        // An event-stream token opens one job's stream: one per job.
        const sseTokens = new Map<string, string>();
        for (const id of ids) sseTokens.set(id, (await j(await fetch(`${api.url}/shorts/jobs/${id}/events-token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }))).token);
        const latencies: number[] = [];
        const conns = Array.from({ length: streams }, (_, i) => ({ job: ids[i % jobsN], seqs: [] as number[], ready: false, ended: false, abort: new AbortController() }));
        let measuring = false;
        // The same SSE client as the tests (libs/testing openSse: fetch + eventsource-parser).
        const open = (c: (typeof conns)[number]) =>
          new Promise<void>((resolve, reject) => {
            openSse(`${api.url}/shorts/jobs/${c.job}/events?token=${sseTokens.get(c.job)}`, {
                signal: c.abort.signal,
                onEvent: ({ data: e, receivedAt }) => {
                  if (e.step === 'QUEUED' && !c.ready) {
                    c.ready = true;
                    resolve();
                  } else if (e.step === 'GENERATING') {
                    c.seqs.push(e.percent);
                    if (measuring) latencies.push(receivedAt - e.at);
                  }
                },
              })
              .then((stream) => {
                if (stream.status !== 200) return reject(new Error(`SSE ${stream.status}`));
                return stream.done.then(() => {
                  c.ended = true;
                  if (!c.ready) reject(new Error('SSE stream ended before its first event'));
                });
              }, reject);
          });
        const tOpen = Date.now();
        for (let i = 0; i < streams; i += 100) await Promise.all(conns.slice(i, i + 100).map(open));
        ctx.log(`sse: ${streams} streams open in ${((Date.now() - tOpen) / 1000).toFixed(1)} s; appending ${rate} event/s per job for ${durationS} s…`);
        // The producer: `rate` events per second per job, spread evenly over the second (as workers would).
        measuring = true;
        const rounds = Math.max(1, Math.round(durationS * rate));
        const gapMs = 1000 / rate / jobsN;
        const t0 = performance.now();
        let appended = 0;
        for (let r = 0; r < rounds; r++) {
          for (let k = 0; k < jobsN; k++) {
            const due = t0 + (r * jobsN + k) * gapMs;
            const wait = due - performance.now();
            if (wait > 1) await sleep(wait);
            await progress.append({ jobId: ids[k], step: 'GENERATING', percent: r % 100, worker: 'bench' });
            appended++;
          }
        }
        await sleep(1000);
        measuring = false;
        for (const id of ids) await progress.append({ jobId: id, step: 'DONE', percent: 100, worker: 'bench' });
        const until = Date.now() + 10000;
        while (conns.some((c) => !c.ended) && Date.now() < until) await sleep(100);
        for (const c of conns) c.abort.abort();
        const expected = conns.length * rounds;
        const received = conns.reduce((s, c) => s + c.seqs.length, 0);
        const inOrder = conns.every((c) => c.seqs.every((v, i) => v === i % 100));
        const dur = (performance.now() - t0) / 1000;
        modes.sse = { rps: Math.round(received / dur), p50_ms: pct(latencies, 50), p99_ms: pct(latencies, 99), errors: expected - received, requests: received };
        ratios.sse_delivery_p99_ms = pct(latencies, 99);
        details.sse = { streams, jobs: jobsN, eventsPerJob: rounds, appended, expectedDeliveries: expected, received, inOrderNoDuplicates: inOrder, p50: pct(latencies, 50), p90: pct(latencies, 90), p99: pct(latencies, 99), max: pct(latencies, 100) };
        tables.push(
          [
            `### SSE: ${streams} concurrent streams on one shop-api (${jobsN} jobs × ${streams / jobsN} streams, ${rate} event/s per job for ${durationS} s; goal p99 ≤ 100 ms)`,
            '',
            '| deliveries | missing | in order, no duplicates | p50 ms | p90 ms | p99 ms | max ms |',
            '|---:|---:|---|---:|---:|---:|---:|',
            `| ${received} / ${expected} | ${expected - received} | ${inOrder ? 'yes' : 'NO'} | ${pct(latencies, 50)} | ${pct(latencies, 90)} | **${pct(latencies, 99)}** | ${pct(latencies, 100)} |`,
          ].join('\n'),
        );
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await api.stop();
      // The bench owns its queue: drop its BullMQ keys and its progress feed (job streams expire by themselves).
      const q = new Queue(queue, { connection: redis });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
      await redis.del(progress.feedKey);
      await redis.quit().catch(() => redis.disconnect());
    }
    return { modes, ratios, tables, details };
  },
} satisfies Scenario;

// `npm run demo -- q2` (scripts/demo.mjs): the short run at the top of docs/q2-shorts-service.md. One 60 s 360p (the model cuts 3 shorts of ≥ 15 s)
// synthetic video (generated once, cached under var/bench/) through the model alone (time per stage) and through
// the whole pipeline with one worker; 100 SSE streams for 3 s.
export const demo = {
  // One bench user uploads every job and opens every stream, and each run signs up two users: the per-user and
  // sign-up limits are not what this measures (the API target inherits the bench's environment).
  env: { SHORTS_MAX_ACTIVE_JOBS_PER_USER: '1000', SHORTS_MAX_SSE_STREAMS_PER_USER: '10000', RATE_LIMIT_SIGN_UP_IP_MAX: '0' },
  opts: { parts: 'model,jobs,sse', 'model-seconds': 60, 'model-size': '640x360', jobs: 1, 'job-seconds': 60, 'job-size': '640x360', workers: 1, 'sse-streams': 100, 'sse-jobs': 10, 'sse-duration': '3s' },
  headline(r) {
    const m = r.details.model;
    const stages = Object.entries(m.stages as Record<string, number>).map(([s, v]) => `${s} ${v.toFixed(1)} s`).join(', ');
    const job = r.details.jobs_1;
    return `**model wall / video length = ${r.ratios.model_wall_per_video_length}** on a ${m.seconds} s ${m.size} video (${stages}); the same video through tus upload → queue → worker → DONE took ${job?.perJobS?.[0] ?? '–'} s in the worker (${job?.elapsedS ?? '–'} s from upload start); SSE delivery p99 ${r.ratios.sse_delivery_p99_ms} ms over ${r.details.sse?.streams} streams. The model, not the upload or the queue, is where a job's time goes: capacity is model time × jobs, so workers scale out and the API only stores and streams.`;
  },
} satisfies DemoPreset;
