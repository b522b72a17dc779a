/**
 * FfmpegShortsModel: the reference model, real signal processing with the system ffmpeg/ffprobe.
 *   1. probe (not a video -> ModelInputError "not a video file"). User files are hostile: every ffprobe/ffmpeg
 *      input is opened with `-protocol_whitelist file` (a playlist cannot make us fetch URLs) and
 *      `-format_whitelist` (only plain container demuxers: no hls/concat/image2/… that open other files),
 *      so a refused format fails the probe before any decode,
 *   2. one analysis pass over a cheap signal: the scene-change score between consecutive KEYFRAMES (decoded
 *      alone with -skip_frame nokey, scaled to 64x36; encoders put keyframes at scene cuts and every few
 *      seconds) + EBU R128 momentary loudness of the audio, in the same process. Only when keyframes are
 *      sparser than one per 4 s does a second pass decode every frame (2 fps, no loop filter) for the scenes,
 *   3. score each second, choose 3 non-overlapping highlight windows (15–60 s by default),
 *   4. cut each window (fast input seek: -ss before -i) and reframe it to 9:16 (centre crop, no upscaling,
 *      height capped at maxHeight = 960 px by default, at most 30 fps), x264 `veryfast` CRF 26; the cuts run
 *      concurrently, the thread budget (`threads`, default 2) split between them,
 *   5. write shorts.zip (3 MP4s + manifest.json) into the output directory.
 * Trade-off: keyframe-only analysis sees a scene change up to one GOP late and misses cuts inside a GOP; it
 * costs ~1/25 of a full decode, and a short is 15–60 s long, so a one-GOP error does not move a window much.
 * All CPU-heavy work runs in ffmpeg child processes, so the caller's event loop stays free. Deterministic:
 * same input -> same windows, same manifest, and bit-exact encodes (fixed per-cut thread count, +bitexact).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chooseWindows, scoreSeconds, windowLength, type HighlightWindow } from './highlights.js';
import { ModelInputError, type ShortsModel, type ShortsModelOptions, type ShortsModelResult } from './shorts-model.js';
import { writeZip } from './zip.js';

export interface FfmpegShortsModelOptions {
  minWindowS?: number;
  maxWindowS?: number;
  /** Height cap of the 9:16 output (rounded down to a multiple of 32; never upscaled). Default 960 (540x960). */
  maxHeight?: number;
  /** x264 preset: speed vs size. Default veryfast (ultrafast is ~40 % faster but ~3.5x larger). */
  preset?: string;
  crf?: number;
  /** CPU thread budget for the whole run (split between concurrent cuts). Default 2. */
  threads?: number;
  ffmpeg?: string;
  ffprobe?: string;
  /** Demuxers an input may use (ffmpeg's format_whitelist). Default INPUT_FORMATS. */
  formats?: readonly string[];
}

/**
 * Plain audio/video containers. Everything else is refused, above all the demuxers that open other
 * files or URLs named inside the input (hls, dash, concat, image2, tee, …).
 */
export const INPUT_FORMATS: readonly string[] = ['mov', 'mp4', 'm4a', '3gp', '3g2', 'mj2', 'matroska', 'webm', 'avi', 'mpegts', 'flv'];

export interface ProbeResult {
  durationS: number;
  width: number;
  height: number;
  hasAudio: boolean;
}

export const ARCHIVE_NAME = 'shorts.zip';

/** Seconds per stage of one run (wall time), for benchmarks and logs. */
export type StageTimings = Record<'spool' | 'probe' | 'analyse' | 'cut' | 'zip', number>;

/** What a failed ffmpeg/ffprobe run said: for the operator's log only, never for the user. */
export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${tool} exited with ${exitCode}`);
  }
}

/** Keyframes sparser than this (s between keyframes, on average) -> the full-decode scene pass. */
const MAX_KEYFRAME_GAP_S = 4;

function run(cmd: string, args: string[], opts: { signal?: AbortSignal; onStdoutLine?: (line: string) => void } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // SIGKILL on abort: a decoder stuck in a crafted file must not be able to ignore it.
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal, killSignal: 'SIGKILL' });
    let out = '';
    let err = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      if (opts.onStdoutLine) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(opts.onStdoutLine);
      } else out += s;
    });
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.on('error', (e: any) => reject(e?.code === 'ENOENT' ? new Error(`${cmd} is not installed (apt-get install ffmpeg)`) : e));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new ToolError(cmd, code, err.trim().split('\n').slice(-3).join(' | ')))));
  });
}

export class FfmpegShortsModel implements ShortsModel {
  readonly minWindowS: number;
  readonly maxWindowS: number;
  readonly maxHeight: number;
  private readonly preset: string;
  private readonly crf: number;
  private readonly threads: number;
  private readonly ffmpeg: string;
  private readonly ffprobe: string;
  /** Input options for every ffmpeg/ffprobe run on the user's file. */
  private readonly inputGuard: string[];

  constructor(opts: FfmpegShortsModelOptions = {}) {
    this.minWindowS = opts.minWindowS ?? 15;
    this.maxWindowS = opts.maxWindowS ?? 60;
    this.maxHeight = opts.maxHeight ?? 960;
    this.preset = opts.preset ?? 'veryfast';
    this.crf = opts.crf ?? 26;
    this.threads = Math.max(1, opts.threads ?? 2);
    this.ffmpeg = opts.ffmpeg ?? 'ffmpeg';
    this.ffprobe = opts.ffprobe ?? 'ffprobe';
    this.inputGuard = ['-protocol_whitelist', 'file', '-format_whitelist', (opts.formats ?? INPUT_FORMATS).join(',')];
  }

  async generate(input: Readable, outputDir: string, opts: ShortsModelOptions & { onProbed?: (p: ProbeResult) => void } = {}): Promise<ShortsModelResult & { stages: StageTimings; windows: HighlightWindow[] }> {
    await mkdir(outputDir, { recursive: true });
    const work = await mkdtemp(join(outputDir, '.work-'));
    let last = 0;
    const progress = (p: number, stage: string) => {
      const v = Math.max(last, Math.min(100, Math.floor(p)));
      if (v !== last || p === 0) opts.onProgress?.(v, stage);
      last = v;
    };
    const stages: StageTimings = { spool: 0, probe: 0, analyse: 0, cut: 0, zip: 0 };
    const timed = async <T>(stage: keyof StageTimings, fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        stages[stage] = Math.round(performance.now() - t) / 1000;
      }
    };
    try {
      progress(0, 'probe');
      const source = await timed('spool', () => this.localFile(input, work, opts.signal));
      const probe = await timed('probe', () => this.probe(source));
      opts.onProbed?.(probe);
      const length = windowLength(probe.durationS, this.minWindowS, this.maxWindowS);
      const signals = await timed('analyse', () => this.analyse(source, probe, work, (f) => progress(f * 10, 'analyse'), opts.signal));
      const scores = scoreSeconds(signals).slice(0, Math.floor(probe.durationS));
      const windows = chooseWindows(scores, length);
      const { width, height } = this.outputSize(probe);
      const files = windows.map((_, i) => join(work, `short-${i + 1}.mp4`));
      const done = windows.map(() => 0);
      const { perCut, parallel } = this.threadSplit(windows.length);
      // One failed cut stops the others before the work dir is removed.
      const cutsAbort = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, cutsAbort.signal]) : cutsAbort.signal;
      await timed('cut', () =>
        pool(windows, parallel, (w, i) =>
          this.cut(source, w, width, height, perCut, files[i], (f) => {
            done[i] = f;
            progress(10 + (done.reduce((a, b) => a + b, 0) / windows.length) * 89, 'cut');
          }, signal),
        ).catch((e) => {
          cutsAbort.abort();
          throw e;
        }),
      );
      const manifest = {
        model: 'ffmpeg-reference/2',
        source: { durationS: Math.round(probe.durationS * 1000) / 1000, width: probe.width, height: probe.height, hasAudio: probe.hasAudio },
        scoring: 'per second: 0.5 * scene change (max scene score / video max) + 0.5 * loudness ((LUFS + 70) / 70)',
        sceneFrom: signals.sceneFrom,
        output: { width, height, aspect: '9:16', codec: 'h264/aac' },
        shorts: windows.map((w, i) => ({ file: `short-${i + 1}.mp4`, startS: w.startS, endS: w.endS, score: w.score })),
      };
      const archivePath = join(outputDir, ARCHIVE_NAME);
      await timed('zip', () =>
        writeZip(archivePath, [
          ...files.map((f, i) => ({ name: `short-${i + 1}.mp4`, path: f })),
          { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n') },
        ]),
      );
      progress(100, 'done');
      return { archivePath, stages, windows };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * The thread budget split between the cuts: x264 at ~400x700 does not use 2 threads well, so on 2
   * cores two single-threaded cuts in parallel beat one two-threaded cut at a time. A fixed per-cut thread
   * count keeps the encodes bit-exact whatever the scheduling.
   */
  threadSplit(cuts: number): { perCut: number; parallel: number } {
    const perCut = Math.max(1, Math.floor(this.threads / cuts));
    return { perCut, parallel: Math.max(1, Math.min(cuts, Math.floor(this.threads / perCut))) };
  }

  /**
   * ffmpeg needs a seekable file (an mp4's index may sit at its end, and the model reads the input twice):
   * the input stream is spooled once into the model's work dir. The caller hands over a stream, whatever
   * its origin (object storage, a pipe from the worker); the model never asks where it came from.
   */
  private async localFile(input: Readable, work: string, signal?: AbortSignal): Promise<string> {
    const file = join(work, 'source');
    await pipeline(input, createWriteStream(file), { signal });
    return file;
  }

  async probe(file: string): Promise<ProbeResult> {
    let info: any;
    try {
      info = JSON.parse(await run(this.ffprobe, ['-v', 'error', ...this.inputGuard, '-show_entries', 'format=duration,format_name:stream=codec_type,width,height', '-of', 'json', file]));
    } catch (e) {
      if (/is not installed/.test(String((e as Error).message))) throw e;
      // A refused format (format_whitelist) lands here too: the user gets one sentence, the log the rest.
      throw new ModelInputError('not a video file', 'unsupported_input', e instanceof ToolError ? e.stderr : String(e));
    }
    const video = (info.streams ?? []).find((s: any) => s.codec_type === 'video');
    const durationS = Number(info.format?.duration);
    if (!video || !Number.isFinite(durationS) || durationS <= 0 || /image2|_pipe$|^png|^gif/.test(String(info.format?.format_name))) {
      throw new ModelInputError('not a video file');
    }
    return { durationS, width: Number(video.width), height: Number(video.height), hasAudio: (info.streams ?? []).some((s: any) => s.codec_type === 'audio') };
  }

  private outputSize(p: ProbeResult): { width: number; height: number } {
    const cropH = Math.min(p.height, Math.floor((p.width * 16) / 9));
    const height = Math.max(64, Math.floor(Math.min(cropH, this.maxHeight) / 32) * 32);
    return { width: (height / 16) * 9, height };
  }

  private async analyse(file: string, p: ProbeResult, work: string, onFraction: (f: number) => void, signal?: AbortSignal) {
    const sceneFile = join(work, 'scene.txt');
    const loudFile = join(work, 'loud.txt');
    const scenePass = (out: string) => `scale=64:36:flags=fast_bilinear,select='gte(scene\\,0)',metadata=print:key=lavfi.scene_score:file=${out}`;
    const onLine = (line: string) => {
      const m = /^out_time_us=(\d+)/.exec(line);
      if (m) onFraction(Math.min(1, Number(m[1]) / 1e6 / p.durationS));
    };
    // One process, one demux: keyframes only for the picture (-skip_frame nokey), all of the audio.
    const graph = [`[0:v]${scenePass(sceneFile)}[v]`];
    const maps = ['-map', '[v]'];
    if (p.hasAudio) {
      graph.push(`[0:a]ebur128=metadata=1,ametadata=print:key=lavfi.r128.M:file=${loudFile}[a]`);
      maps.push('-map', '[a]');
    }
    const threads = String(this.threads);
    await run(this.ffmpeg, ['-v', 'error', '-nostats', '-threads', threads, '-skip_frame', 'nokey', ...this.inputGuard, '-i', file, '-filter_complex', graph.join(';'), ...maps, '-f', 'null', '-progress', 'pipe:1', '-'], {
      signal,
      onStdoutLine: onLine,
    });
    let sceneText = await readFile(sceneFile, 'utf8');
    let sceneFrom = 'keyframes';
    const keyframes = (sceneText.match(/pts_time:/g) ?? []).length;
    if (keyframes < p.durationS / MAX_KEYFRAME_GAP_S) {
      // Long GOPs: keyframes alone are too coarse. Decode every frame, but cheaply (no deblocking: the
      // picture only feeds a 64x36 scene score), and look at 2 frames per second.
      const full = join(work, 'scene-full.txt');
      await run(this.ffmpeg, ['-v', 'error', '-nostats', '-threads', threads, '-skip_loop_filter', 'all', ...this.inputGuard, '-i', file, '-an', '-filter_complex', `[0:v]fps=2,${scenePass(full)}[v]`, '-map', '[v]', '-f', 'null', '-progress', 'pipe:1', '-'], {
        signal,
        onStdoutLine: onLine,
      });
      sceneText = await readFile(full, 'utf8');
      sceneFrom = 'frames at 2 fps (keyframes too sparse)';
    }
    const perSecond = (text: string, key: string, reduce: 'max' | 'mean'): number[] => {
      const acc: { sum: number; n: number; max: number }[] = [];
      let t = 0;
      for (const line of text.split('\n')) {
        const f = /pts_time:([\d.]+)/.exec(line);
        if (f) t = Math.floor(Number(f[1]));
        else if (line.startsWith(`${key}=`)) {
          const v = Number(line.slice(key.length + 1));
          if (!Number.isFinite(v)) continue;
          const a = (acc[t] ??= { sum: 0, n: 0, max: -Infinity });
          a.sum += v;
          a.n++;
          a.max = Math.max(a.max, v);
        }
      }
      return Array.from(acc, (a) => (a ? (reduce === 'max' ? a.max : a.sum / a.n) : 0));
    };
    const scene = perSecond(sceneText, 'lavfi.scene_score', 'max');
    const loudness = p.hasAudio ? perSecond(await readFile(loudFile, 'utf8'), 'lavfi.r128.M', 'mean') : [];
    return { scene, loudness, sceneFrom };
  }

  private async cut(file: string, w: HighlightWindow, width: number, height: number, threads: number, out: string, onFraction: (f: number) => void, signal?: AbortSignal) {
    const length = w.endS - w.startS;
    const t = String(threads);
    await run(
      this.ffmpeg,
      [
        '-v', 'error', '-nostats', '-y',
        // -ss before -i: seek to the keyframe before the start, decode only from there (exact cut, no full scan).
        '-threads', t, '-ss', String(w.startS), ...this.inputGuard, '-i', file, '-t', String(length),
        '-vf', `crop='min(iw,ih*9/16)':'min(ih,iw*16/9)',scale=${width}:${height},setsar=1,fps='min(30,source_fps)'`,
        '-filter_threads', t,
        '-c:v', 'libx264', '-preset', this.preset, '-crf', String(this.crf), '-pix_fmt', 'yuv420p', '-threads', t,
        '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
        '-map_metadata', '-1', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-flags:a', '+bitexact',
        '-movflags', '+faststart', '-progress', 'pipe:1', out,
      ],
      {
        signal,
        onStdoutLine: (line) => {
          const m = /^out_time_us=(\d+)/.exec(line);
          if (m) onFraction(Math.min(1, Number(m[1]) / 1e6 / length));
        },
      },
    );
  }
}

/** Runs fn over items with at most `parallel` at a time; rejects on the first failure. */
async function pool<T>(items: T[], parallel: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, lane));
}
