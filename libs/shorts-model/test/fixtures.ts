/** ffprobe checks for the generated shorts (test videos come from makeSyntheticVideo: lavfi, no fixtures in git). */
import { execFileSync } from 'node:child_process';

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
