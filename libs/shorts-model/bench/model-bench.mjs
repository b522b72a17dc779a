#!/usr/bin/env node
// Model benchmark: wall time / video length for the reference FfmpegShortsModel on a synthetic video
// (default 10 min, 1280x720, 25 fps), with a per-stage breakdown. Runs from dist (npm run build first).
//   node libs/shorts-model/bench/model-bench.mjs [--seconds 600] [--size 1280x720]
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '600' }, size: { type: 'string', default: '1280x720' }, keep: { type: 'string' } } });
const { FfmpegShortsModel, makeSyntheticVideo } = await import(new URL('../../../dist/libs/shorts-model/src/index.js', import.meta.url));
const seconds = Number(values.seconds);
const dir = await mkdtemp(join(tmpdir(), 'model-bench-'));
try {
  const video = values.keep && existsSync(values.keep) ? values.keep : join(dir, 'in.mp4');
  if (video === join(dir, 'in.mp4')) {
    process.stdout.write(`generating a ${seconds} s ${values.size} synthetic video… `);
    const t = performance.now();
    await makeSyntheticVideo(video, { seconds, size: values.size, fps: 25 });
    console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const stages = new Map();
  let stage = 'start';
  let since = performance.now();
  const t0 = since;
  const model = new FfmpegShortsModel();
  await model.generate(createReadStream(video), join(dir, 'out'), {
    onProgress: (p, s) => {
      if (s !== stage) {
        stages.set(stage, (stages.get(stage) ?? 0) + performance.now() - since);
        stage = s;
        since = performance.now();
      }
      if (p % 10 === 0) process.stdout.write(`\r  ${p}% (${s})   `);
    },
  });
  stages.set(stage, (stages.get(stage) ?? 0) + performance.now() - since);
  const wall = (performance.now() - t0) / 1000;
  console.log('\n\n| stage | seconds | share |\n|---|---:|---:|');
  for (const [s, ms] of stages) if (ms > 1) console.log(`| ${s} | ${(ms / 1000).toFixed(1)} | ${((ms / 1000 / wall) * 100).toFixed(0)} % |`);
  console.log(`| **total** | **${wall.toFixed(1)}** | |\n\nvideo ${seconds} s ${values.size}: wall / video length = **${(wall / seconds).toFixed(3)}** (goal ≤ 0.2)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
