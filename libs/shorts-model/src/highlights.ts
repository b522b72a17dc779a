/**
 * Highlight selection: every second of the video gets a score from its scene change (the largest
 * frame-to-frame scene score in that second, normalised by the video's maximum) and its loudness
 * (mean momentary EBU R128 loudness, -70..0 LUFS mapped to 0..1). Three non-overlapping windows with the
 * largest total score are chosen exactly by dynamic programming (not greedily, which can paint itself
 * into a corner). Pure and deterministic: ties go to the earliest window.
 */
import { ModelInputError } from './shorts-model.js';

export interface SecondSignals {
  scene: number[];
  loudness: number[];
}

export interface HighlightWindow {
  startS: number;
  endS: number;
  score: number;
}

export function scoreSeconds({ scene, loudness }: SecondSignals): number[] {
  const n = Math.max(scene.length, loudness.length);
  const maxScene = Math.max(0, ...scene);
  const out: number[] = [];
  for (let s = 0; s < n; s++) {
    const sc = maxScene > 0 ? (scene[s] ?? 0) / maxScene : 0;
    const lufs = loudness[s];
    const ld = lufs === undefined || !Number.isFinite(lufs) ? 0 : Math.min(1, Math.max(0, (lufs + 70) / 70));
    out.push(Math.round((0.5 * sc + 0.5 * ld) * 1e6) / 1e6);
  }
  return out;
}

export function windowLength(durationS: number, minS: number, maxS: number, count = 3): number {
  const n = Math.floor(durationS);
  if (n < count * minS) {
    throw new ModelInputError(`the video is too short: ${count} shorts of at least ${minS} s need ${count * minS} s, the video has ${n} s`, 'too_short');
  }
  return Math.max(minS, Math.min(maxS, Math.floor(n / 10), Math.floor(n / count)));
}

export function chooseWindows(scores: number[], length: number, count = 3): HighlightWindow[] {
  const n = scores.length;
  if (n < count * length) throw new ModelInputError(`the video is too short for ${count} windows of ${length} s`, 'too_short');
  const prefix = [0];
  for (const s of scores) prefix.push(prefix[prefix.length - 1] + s);
  const sum = (i: number) => prefix[i + length] - prefix[i];
  // best[k][i]: the best total of k windows that all start at or after second i.
  const best: number[][] = Array.from({ length: count + 1 }, () => new Array(n + 1).fill(-Infinity));
  for (let i = 0; i <= n; i++) best[0][i] = 0;
  for (let k = 1; k <= count; k++) {
    for (let i = n; i >= 0; i--) {
      const skip = i + 1 <= n ? best[k][i + 1] : -Infinity;
      const take = i + length <= n ? sum(i) + best[k - 1][i + length] : -Infinity;
      best[k][i] = Math.max(skip, take);
    }
  }
  const out: HighlightWindow[] = [];
  let i = 0;
  for (let k = count; k >= 1; k--) {
    // Earliest start that achieves the optimum (deterministic tie-break).
    while (!(i + length <= n && sum(i) + best[k - 1][i + length] >= best[k][i] - 1e-9)) i++;
    out.push({ startS: i, endS: i + length, score: Math.round(sum(i) * 1e6) / 1e6 });
    i += length;
  }
  return out;
}
