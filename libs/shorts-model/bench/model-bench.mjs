#!/usr/bin/env node
// Model benchmark: wall time / video length for the reference FfmpegShortsModel on a synthetic video
// (default 10 min, 1280x720, 25 fps, cached under var/bench/), with a per-stage breakdown. Runs from dist
// (npm run build first). `npm run bench -- shorts` runs the same measurement as part of the shorts bench.
//   node libs/shorts-model/bench/model-bench.mjs [--seconds 600] [--size 1280x720] [--threads 2] [--preset veryfast] [--max-height 960]
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    size: { type: 'string', default: '1280x720' },
    threads: { type: 'string', default: '2' },
    preset: { type: 'string', default: 'veryfast' },
    'max-height': { type: 'string', default: '960' },
  },
});
const { FfmpegShortsModel } = await import(join(root, 'dist/libs/shorts-model/src/index.js'));
const { makeSyntheticVideo } = await import(join(root, 'dist/libs/testing/src/index.js'));
const seconds = Number(values.seconds);

/** The synthetic input, generated once with lavfi and cached (generating 10 min of 720p takes minutes). */
async function cachedVideo(secs, size) {
  const dir = join(root, 'var/bench');
  const file = join(dir, `synthetic-${secs}s-${size}.mp4`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${secs} s ${size} synthetic video into ${file}… `);
  const t = performance.now();
  await makeSyntheticVideo(`${file}.tmp.mp4`, { seconds: secs, size, fps: 25 });
  await rename(`${file}.tmp.mp4`, file);
  console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);
  return file;
}

const video = await cachedVideo(seconds, values.size);
const out = await mkdtemp(join(root, 'var/bench/model-out-'));
try {
  const model = new FfmpegShortsModel({ threads: Number(values.threads), preset: values.preset, maxHeight: Number(values['max-height']) });
  const t0 = performance.now();
  const { stages } = await model.generate(createReadStream(video), out, {
    onProgress: (p, s) => {
      if (p % 10 === 0) process.stdout.write(`\r  ${p}% (${s})   `);
    },
  });
  const wall = (performance.now() - t0) / 1000;
  console.log('\n\n| stage | seconds | share |\n|---|---:|---:|');
  for (const [s, sec] of Object.entries(stages)) console.log(`| ${s} | ${sec.toFixed(1)} | ${((sec / wall) * 100).toFixed(0)} % |`);
  console.log(`| **total** | **${wall.toFixed(1)}** | |\n\nvideo ${seconds} s ${values.size}: wall / video length = **${(wall / seconds).toFixed(3)}** (goal ≤ 0.2)`);
} finally {
  await rm(out, { recursive: true, force: true });
}
