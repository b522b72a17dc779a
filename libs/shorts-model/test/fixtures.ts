/**
 * Test videos are generated at test time from ffmpeg's lavfi sources (no binary fixtures in git):
 * a moving test pattern whose hue jumps every 7 s (scene changes) and a tone that gets loud for 6 s in
 * every 20 (loudness peaks). Small (320x180, 15 fps, ultrafast) so the model runs in seconds on 2 cores.
 */
import { execFileSync } from 'node:child_process';

export function makeTestVideo(file: string, seconds = 60, size = '320x180'): string {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=15:duration=${seconds},hue=H=2*PI*floor(t/7)/5`,
    '-f', 'lavfi', '-i', `aevalsrc=sin(440*2*PI*t)*(0.05+0.9*gt(mod(t\\,20)\\,14)):s=22050:d=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '32', '-g', '30', '-c:a', 'aac', '-b:a', '48k', '-shortest', file,
  ]);
  return file;
}

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
}

export function ffprobe(file: string): { streams: ProbedStream[]; format: { duration: string } } {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type,codec_name,width,height', '-of', 'json', file]).toString());
}

/** Decodes every frame: a "playable" check, not just a header check. */
export function decodesCleanly(file: string): boolean {
  execFileSync('ffmpeg', ['-v', 'error', '-xerror', '-i', file, '-f', 'null', '-']);
  return true;
}
