#!/usr/bin/env node
// `npm run demo -- <page>`: the short version of a docs page's measurement, for a reader who wants to see the
// trade-off on their own machine before the long run: small data, short modes, ≤ 90 s on a 2-core box against
// the stack `npm start` leaves. Each page maps to one or more benchmark scenarios (or the multi-region lab) run
// with the scenario's `demo` preset (its exported options and environment, see load-tests/scenarios/*.ts).
// Results go to load-tests/results/demo/ (gitignored): the documented result files are never touched.
// Prints each run's table, then the headline number and one sentence of what it shows.
//
//   npm run demo -- q1 | q1a | q1b | q2 | q3 | q3a | q3b      (npm run demo -- list: what each shows)
//   npm run demo -- console-<experiment>                      (the /console page's experiments, same code:
//                                                               console-cache-modes | console-stampede | console-stampede-fleet | console-partitions |
//                                                               console-attribute-filter | console-replica-lag | console-replica-kill |
//                                                               console-replica-scale | console-hot-user | console-worker-kill |
//                                                               console-redis-down)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuild, ensureDeps, ensureNode, root, sh, stackUp } from './bootstrap.mjs';

export const OUT_DIR = 'load-tests/results/demo';

// page → docs page + the runs that show its trade-off (bench: a scenario with its `demo` preset; lab: options).
export const PAGES = {
  q1: { doc: 'docs/q1-hot-products.md', shows: 'cache off vs L1+L2 on a CPU-capped database', runs: [{ bench: 'hot-products' }] },
  q1a: { doc: 'docs/q1a-orders-growth.md', shows: 'partitioned vs unpartitioned: month scan, retention DELETE vs DROP PARTITION', runs: [{ bench: 'orders-growth' }] },
  q1b: { doc: 'docs/q1b-category-attributes.md', shows: 'attribute filter: indexed JSON column vs EAV vs unindexed JSON scan', runs: [{ bench: 'attribute-filter' }] },
  q2: { doc: 'docs/q2-shorts-service.md', shows: 'a short synthetic video: model time per stage, upload → queue → worker → DONE, SSE delivery', runs: [{ bench: 'shorts' }] },
  q3: { doc: 'docs/q3-replication.md', shows: 'read-your-writes with a lagging replica (token reads vs naive replica reads), then reads on the primary vs 1 vs 2 replicas', runs: [{ bench: 'replica-stale' }, { bench: 'replica-reads' }] },
  q3a: {
    doc: 'docs/q3a-multi-region.md',
    shows: 'replication vs Galera vs geo-sharding across 3 simulated regions (40 ms one-way): writes, hot row, region C cut off',
    // One short setting of the lab: the three setups at one WAN delay, short phases (the cut must outlast
    // Galera's 6 s inactive timeout to show who keeps writing).
    runs: [{ lab: 'multi-region', args: ['--setups', 'replication,galera,geo', '--delay', '40', '--duration', '3', '--cut', '8', '--concurrency', '2'], headline: labHeadline }],
  },
  q3b: { doc: 'docs/q3b-sharding-cautions.md', shows: 'POST /orders with 1 vs 2 shards, and the catalog primary as the ceiling; shard balance of 1M users', runs: [{ bench: 'orders-write' }] },
};

function labHeadline(r) {
  const out = [];
  for (const [name, s] of Object.entries(r.setups ?? {})) {
    if (s.error) {
      out.push(`${name}: failed (${s.error})`);
      continue;
    }
    const b = s.writes.B.write.p50;
    const a = s.writes.A.write.p50;
    const c = s.cut.perRegion.C;
    out.push(`${name}: a write from region B takes ${b} ms at p50 (region A: ${a} ms); with region C cut off, C ${c.canWrite ? 'keeps writing' : 'cannot write'} (${c.writesOk} ok / ${c.writesFailed} failed)${c.readDuringCut ? `, its reads: ${c.readDuringCut}` : ''}.`);
  }
  out.push('Someone pays the WAN round trip: with replication the regions away from the primary, with Galera every commit (and a cut-off minority region stops), with geo-sharding only the users away from home.');
  return out.join('\n');
}

// The trade-off console's experiments (docs/console.md): each runs the module the page's button runs
// (apps/shop-api/src/console/experiments), through apps/shop-api/src/console/cli.ts.
export const CONSOLE_EXPERIMENTS = {
  'console-cache-modes': 'Q1 cache off / L2 / L1+L2 at run time under a bounded Zipf load, catalog nodes capped: req/s, p99, DB loads/s',
  'console-stampede': 'Q1 100 concurrent reads of one cold key: DB loads with the cache off vs on (1, not 100)',
  'console-stampede-fleet': 'Q1 the cold-key stampede over two API instances (a second one started for the run): 1 DB load for the fleet',
  'console-partitions': 'Q1.a generated orders partitioned by month vs not: month scan rows examined + ms, retention DELETE vs DROP PARTITION',
  'console-attribute-filter': 'Q1.b one attribute filter as indexed generated column vs EAV vs JSON scan: rows examined, ms',
  'console-replica-lag': "Q3 stop replica-1's SQL thread: out of rotation, 0 stale token reads, stale naive reads, rejoin",
  'console-replica-kill': 'Q3 kill a replica under read load (cache off): 0 failed reads, retried on another node, then it rejoins',
  'console-replica-scale': 'Q3 reads with 0 / 1 / 2 replicas, catalog nodes CPU-capped: reads/s and each node\'s SELECTs',
  'console-hot-user': 'Q3.b POST /orders from one hot user vs spread users: orders/s per shard',
  'console-worker-kill': 'Q2 a generated video through the shorts pipeline, worker SIGKILLed mid-job: it finishes once',
  'console-redis-down': 'Q1 kill redis-cache under load (cache L2-only): reads keep answering from the database, then L2 returns',
};

function usage(code) {
  console.error('usage: npm run demo -- <page>\n');
  for (const [k, p] of Object.entries(PAGES)) console.error(`  ${k.padEnd(4)} ${p.doc.padEnd(34)} ${p.shows}`);
  for (const [k, shows] of Object.entries(CONSOLE_EXPERIMENTS)) console.error(`  ${k.padEnd(20)} docs/console.md  ${shows}`);
  process.exit(code);
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    // Ctrl-C reaches the child through the terminal's process group; the child undoes its caps and tables.
    const fwd = (sig) => () => child.kill(sig);
    const onInt = fwd('SIGINT');
    const onTerm = fwd('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** `--key value` pairs from a preset's options object. */
const flags = (opts) => Object.entries(opts).flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, String(v)]));

async function main() {
  const page = process.argv[2];
  if (!page || page === 'list' || page === '--help') usage(page ? 0 : 2);
  if (CONSOLE_EXPERIMENTS[page]) {
    await ensureNode();
    ensureDeps();
    ensureBuild();
    stackUp();
    sh(process.execPath, [join(root, 'dist/tools/migrate.js')]);
    process.exit(await run(process.execPath, [join(root, 'dist/apps/shop-api/src/console/cli.js'), page.slice('console-'.length), ...process.argv.slice(3)], {}));
  }
  if (!PAGES[page]) {
    console.error(`unknown page '${page}'`);
    usage(2);
  }
  await ensureNode();
  ensureDeps();
  ensureBuild();
  stackUp(); // already up after `npm start`: a quick check
  sh(process.execPath, [join(root, 'dist/tools/migrate.js')]); // idempotent; the scenarios read the app's schema
  mkdirSync(join(root, OUT_DIR), { recursive: true });
  const stack = await import(pathToFileURL(join(root, 'docker/local/stack.mjs')).href);
  const t0 = Date.now();
  const headlines = [];
  let failed = 0;
  for (const step of PAGES[page].runs) {
    let code;
    let file;
    let headline;
    if (step.lab) {
      file = join(root, OUT_DIR, `${step.lab}.json`);
      console.log(`\n› npm run lab -- ${step.lab} ${step.args.join(' ')}`);
      code = await run(process.execPath, [join(root, 'load-tests/lab/lab.mjs'), step.lab, ...step.args, '--out', file], {});
      headline = step.headline;
    } else {
      // Scenarios are TypeScript, compiled into dist/ (ensureBuild above); the runner's locator finds either kind.
      const { loadScenario } = await import(pathToFileURL(join(root, 'dist/load-tests/runner/scenarios.js')).href);
      const { demo } = await loadScenario(step.bench);
      if (!demo) throw new Error(`load-tests/scenarios/${step.bench} exports no demo preset`);
      let opts = { ...demo.opts };
      // Capped modes need a cgroup cpu controller; without one the preset's uncapped modes show the same trade-off, less sharply.
      if (demo.uncapped && stack.capMechanism().mechanism === 'none') {
        console.log(`› no cgroup cpu controller (${stack.capMechanism().reason}): running the uncapped modes instead`);
        opts = { ...opts, ...demo.uncapped };
      }
      file = join(root, OUT_DIR, `${step.bench}.json`);
      const args = [step.bench, ...flags(opts), '--out', file];
      console.log(`\n› npm run bench -- ${args.join(' ')}${Object.keys(demo.env ?? {}).length ? `   (env ${Object.entries(demo.env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`);
      code = await run(process.execPath, [join(root, 'dist/load-tests/runner/bench.js'), ...args], demo.env ?? {});
      headline = demo.headline;
    }
    if (code !== 0 || !existsSync(file)) {
      failed++;
      headlines.push(`✗ ${step.bench ?? step.lab} failed (exit ${code}); see its output above`);
      continue;
    }
    const result = JSON.parse(readFileSync(file, 'utf8'));
    headlines.push(await headline(result, { root }));
  }
  const wall = (Date.now() - t0) / 1000;
  console.log(`\n── ${page} (${PAGES[page].doc}): ${PAGES[page].shows}\n`);
  console.log(headlines.join('\n\n'));
  console.log(`\nDemo data, short modes (${wall.toFixed(0)} s): the page's long run and its recorded numbers follow the command in ${PAGES[page].doc}. Written to ${OUT_DIR}/ (gitignored).`);
  process.exit(failed ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
