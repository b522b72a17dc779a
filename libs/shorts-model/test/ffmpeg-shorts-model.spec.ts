import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { chooseWindows, FfmpegShortsModel, ModelInputError, scoreSeconds, windowLength } from '#libs/shorts-model';
import { makeSyntheticVideo, readZip } from '#libs/testing';
import { decodesCleanly, ffprobe } from './fixtures.js';

let dir: string;
let video: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorts-model-'));
  video = await makeSyntheticVideo(join(dir, 'in.mp4'), { seconds: 60 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('chooseWindows', () => {
  it('when scores have three peaks, then the three windows cover them without overlapping', () => {
    const scores = Array.from({ length: 100 }, (_, s) => ([10, 50, 85].some((p) => Math.abs(s - p) < 3) ? 1 : 0));
    const w = chooseWindows(scores, 10);
    expect(w).toHaveLength(3);
    for (const p of [10, 50, 85]) expect(w.some((x) => x.startS <= p && p < x.endS)).toBe(true);
    for (let i = 1; i < 3; i++) expect(w[i].startS).toBeGreaterThanOrEqual(w[i - 1].endS);
  });

  it('when greedy choice would block the others, then the exact optimum still fits three windows', () => {
    // The single best window sits in the middle; greedy would take it and leave no room for two more.
    const scores = Array.from({ length: 30 }, (_, s) => (s >= 10 && s < 20 ? 2 : 1));
    expect(chooseWindows(scores, 10).map((x) => x.startS)).toEqual([0, 10, 20]);
  });

  it('when the video is shorter than three minimum windows, then it fails with a readable reason', () => {
    expect(() => windowLength(40, 15, 60)).toThrow(ModelInputError);
    expect(windowLength(60, 15, 60)).toBe(15);
    expect(windowLength(600, 15, 60)).toBe(60);
    expect(windowLength(1800, 15, 60)).toBe(60);
  });

  it('scores combine scene change and loudness into 0..1', () => {
    expect(scoreSeconds({ scene: [0, 0.5, 1], loudness: [-70, 0, -35] })).toEqual([0, 0.75, 0.75]);
  });
});

describe('FfmpegShortsModel.generate(input stream, output dir)', () => {
  it('when given a 60 s video, then it writes one archive with 3 playable 9:16 shorts and a manifest, reporting progress', async () => {
    const out = join(dir, 'out-1');
    const progress: number[] = [];
    const model = new FfmpegShortsModel({ preset: 'ultrafast' });
    // A non-file stream: the model must spool it itself.
    const { archivePath } = await model.generate(Readable.from(createReadStream(video)), out, { onProgress: (p) => progress.push(p) });
    expect(await readdir(out)).toEqual(['shorts.zip']);
    const entries = await readZip(await readFile(archivePath));
    expect([...entries.keys()].sort()).toEqual(['manifest.json', 'short-1.mp4', 'short-2.mp4', 'short-3.mp4']);
    const manifest = JSON.parse(entries.get('manifest.json')!.toString());
    expect(manifest.shorts).toHaveLength(3);
    expect(manifest.sceneFrom).toBe('keyframes');
    for (let i = 0; i < 3; i++) {
      const s = manifest.shorts[i];
      expect(s.endS - s.startS).toBe(15);
      if (i > 0) expect(s.startS).toBeGreaterThanOrEqual(manifest.shorts[i - 1].endS);
      const f = join(dir, `check-${i}.mp4`);
      await writeFile(f, entries.get(`short-${i + 1}.mp4`)!);
      const info = ffprobe(f);
      const v = info.streams.find((x) => x.codec_type === 'video')!;
      expect(v.codec_name).toBe('h264');
      expect(v.width! * 16).toBe(v.height! * 9);
      expect(info.streams.some((x) => x.codec_type === 'audio')).toBe(true);
      expect(Math.abs(Number(info.format.duration) - 15)).toBeLessThan(1);
      expect(decodesCleanly(f)).toBe(true);
    }
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(100);
    expect(progress.length).toBeGreaterThan(5);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('when run twice on the same input, then the archive is byte-identical (deterministic)', async () => {
    const model = new FfmpegShortsModel({ preset: 'ultrafast' });
    const a = await model.generate(createReadStream(video), join(dir, 'det-a'));
    const b = await model.generate(createReadStream(video), join(dir, 'det-b'));
    expect((await readFile(a.archivePath)).equals(await readFile(b.archivePath))).toBe(true);
  });

  it('when keyframes are sparser than one per 4 s, then the scene signal comes from a full decode and the shorts are still made', async () => {
    const longGop = await makeSyntheticVideo(join(dir, 'long-gop.mp4'), { seconds: 60, gopS: 30 });
    const { archivePath } = await new FfmpegShortsModel({ preset: 'ultrafast' }).generate(createReadStream(longGop), join(dir, 'out-gop'));
    const manifest = JSON.parse((await readZip(await readFile(archivePath))).get('manifest.json')!.toString());
    expect(manifest.sceneFrom).toMatch(/^frames at 2 fps/);
    expect(manifest.shorts).toHaveLength(3);
  });

  it('when the input is not a video, then it rejects with ModelInputError "not a video file" and leaves no temp files', async () => {
    const out = join(dir, 'out-text');
    await expect(new FfmpegShortsModel().generate(Readable.from([Buffer.from('hello, this is not a video\n'.repeat(100))]), out)).rejects.toThrow(
      new ModelInputError('not a video file'),
    );
    expect(await readdir(out)).toEqual([]);
  });
});
