/**
 * The console's CLI twin: `npm run demo -- console-<name>` (scripts/demo.mjs) runs the SAME experiment
 * module the page's button runs (experiments/*.ts through ExperimentRunner), on a shop-api instance started
 * in this process on 127.0.0.1 (port 0) against the configured stack, then prints the before/after table
 * and writes load-tests/results/demo/console-<name>.json (gitignored; `--out <file>` elsewhere, e.g. the
 * load-tests/results/console-<name>.json that docs/console.md renders with `npm run docs:results`) with its
 * provenance and the table as `tables[0]`.
 * CONSOLE_EXPERIMENTS=on is implied; NODE_ENV=production refuses it like the server does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { createLogger, loadConfigOrExit, repoRoot } from '#libs/core';
import { DbNodes } from '#libs/db';
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
  const outAt = process.argv.indexOf('--out');
  const outArg = outAt > 0 ? process.argv[outAt + 1] : undefined;
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
  const database = String(((await app.get(DbNodes).primary.ds.query('SELECT VERSION() AS v')) as { v: string }[])[0]?.v ?? '');
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
  const out = outArg ? join(process.cwd(), outArg) : join(repoRoot(), 'load-tests/results/demo', `console-${name}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  const provenance = {
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain']) !== '',
    date: new Date(state.startedAt).toISOString(),
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown' },
    node: process.version,
    database: database || undefined,
    loadavg: { before: loadBefore.map((x) => Math.round(x * 100) / 100), after: loadavg().map((x) => Math.round(x * 100) / 100) },
    // Experiments that cap the catalog nodes for their run (cache-modes, replica-scale) report the caps they applied.
    caps: r.caps ? { mechanism: r.caps.mechanism, cpu: r.caps.cpu, nodes: r.caps.nodes, during: 'the run only; each node back to its previous cap after' } : { mechanism: 'none', reason: 'this experiment runs on the stack as it is, no CPU caps' },
    preset: config.console.preset,
    command: `npm run demo -- console-${name}${outArg ? ` --out ${outArg}` : ''}`,
    durationS: Math.round(((state.endedAt ?? Date.now()) - state.startedAt) / 100) / 10,
    cacheMode: config.cache.mode,
    loadConnections: config.console.loadConnections,
  };
  const tables = [`${table(r.rows)}\n\n${r.headline}`];
  writeFileSync(out, JSON.stringify({ scenario: `console-${name}`, experiment: name, provenance, tables, result: r, undone: state.undone }, null, 2) + '\n');
  console.log(`written to ${relative(repoRoot(), out)}`);
  return 0;
}

process.exitCode = await main();
