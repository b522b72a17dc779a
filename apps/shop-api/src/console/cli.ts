/**
 * The console's CLI twin: `npm run demo -- console-<name>` (scripts/demo.mjs) runs the SAME experiment
 * module the page's button runs (experiments/*.ts through ExperimentRunner), on a shop-api instance started
 * in this process on 127.0.0.1 (port 0) against the configured stack, then prints the before/after table
 * and writes load-tests/results/demo/console-<name>.json (gitignored) with its provenance.
 * CONSOLE_EXPERIMENTS=on is implied; NODE_ENV=production refuses it like the server does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadConfigOrExit, repoRoot } from '#libs/core';
import { createApp } from '../app.js';
import { ExperimentRunner } from './experiment-runner.js';
import { EXPERIMENTS } from './experiments/index.js';

function table(rows: Record<string, unknown>[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: repoRoot(), encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

async function main(): Promise<number> {
  const name = process.argv[2] ?? '';
  if (!EXPERIMENTS.has(name)) {
    console.error(`usage: npm run demo -- console-<name>; experiments: ${[...EXPERIMENTS.keys()].join(', ')}`);
    return 2;
  }
  const config = loadConfigOrExit('console experiment', { LOG_LEVEL: 'warn', ...process.env, CONSOLE_EXPERIMENTS: 'on', PORT: '0' });
  const exp = EXPERIMENTS.get(name)!;
  console.log(`› ${exp.title}: ${exp.explain}`);
  const loadBefore = loadavg();
  const app = await createApp(config, { logger: createLogger(config.logLevel, 'console') });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.getHttpServer().address() as { port: number };
  const runner = app.get(ExperimentRunner);
  const { state, finished } = runner.start(name, `http://127.0.0.1:${addr.port}`);
  let shown = 0;
  const tick = setInterval(() => {
    for (; shown < state.progress.length; shown++) console.log(`  ${state.progress[shown]}`);
  }, 200);
  // Ctrl-C: the run stops and is undone by the app's shutdown (ExperimentRunner.beforeApplicationShutdown).
  const stop = () => void app.close().then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await finished;
  clearInterval(tick);
  for (; shown < state.progress.length; shown++) console.log(`  ${state.progress[shown]}`);
  await app.close();
  for (const u of state.undone) console.log(`  undone: ${u.what}${u.ok ? '' : ` — FAILED: ${u.error}`}`);
  if (state.state !== 'done' || !state.result) {
    console.error(`✗ ${name} failed: ${state.error}`);
    return 1;
  }
  const r = state.result;
  console.log(`\n${table(r.rows)}\n\n${r.headline}\n(${r.doc}; the same run as the console's button at /console)`);
  const out = join(repoRoot(), 'load-tests/results/demo', `console-${name}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  const provenance = {
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain']) !== '',
    date: new Date(state.startedAt).toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
    command: `npm run demo -- console-${name}`,
    durationS: Math.round(((state.endedAt ?? Date.now()) - state.startedAt) / 100) / 10,
    cacheMode: config.cache.mode,
    loadConnections: config.console.loadConnections,
  };
  writeFileSync(out, JSON.stringify({ experiment: name, provenance, result: r, undone: state.undone }, null, 2) + '\n');
  console.log(`written to ${out.slice(repoRoot().length + 1)}`);
  return 0;
}

process.exitCode = await main();
