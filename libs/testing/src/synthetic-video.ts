/**
 * Synthetic test videos from ffmpeg's lavfi sources (no binary fixtures in git): a moving test pattern
 * whose hue jumps every 7 s (scene changes) and a tone that gets loud for 6 s in every 20 (loudness
 * peaks). Used by the tests (small: 320x180, ultrafast) and the benchmark (10 min, 720p).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** gopS: seconds between keyframes (default 2, what phones and streaming encoders do; x264 adds more at scene cuts). */
export async function makeSyntheticVideo(file: string, opts: { seconds?: number; size?: string; fps?: number; gopS?: number } = {}): Promise<string> {
  const { seconds = 60, size = '320x180', fps = 15, gopS = 2 } = opts;
  await promisify(execFile)('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}:duration=${seconds},hue=H=2*PI*floor(t/7)/5`,
    '-f', 'lavfi', '-i', `aevalsrc=sin(440*2*PI*t)*(0.05+0.9*gt(mod(t\\,20)\\,14)):s=22050:d=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '32', '-g', String(Math.round(fps * gopS)), '-c:a', 'aac', '-b:a', '48k', '-shortest', file,
  ]);
  return file;
}
