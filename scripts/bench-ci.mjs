#!/usr/bin/env node
// `npm run bench:ci`: the short versions of the benchmarks whose gains the issues promise, each asserting
// a ratio measured in the same run, with margin (the documented goals are higher; see docs/). Results go to
// load-tests/results/ci/ so the documented full runs stay intact. A gate is skipped — loudly, with the
// reason, in the table and in a SKIPPED line at the end — when it cannot measure what it claims: it needs CPU
// caps and no cgroup (v1 or v2) cpu controller is writable, or its run was not capacity-bound (the capped
// nodes were not the bottleneck, so the ratio is omitted by the runner). A gate that ran below its floor fails.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuild, ensureDeps, ensureNode, root, sh, stackUp } from './bootstrap.mjs';


const gates = [
  {
    scenario: 'hot-products',
    args: ['--modes', 'off,l1l2', '--duration', '8s', '--warmup', '4s'],
    env: { BENCH_HOT_PRODUCTS: '20000', BENCH_HOT_PREWARM: '20000' },
    ratio: 'l1l2_vs_off',
    min: 3,
    needsCap: true,
  },
  {
    scenario: 'replica-reads',
    args: ['--duration', '8s', '--warmup', '3s'],
    env: {},
    // Does adding a replica add read capacity? Two replicas vs one, the same kind of node, the same quota. Not
    // two_replicas_vs_primary: under a 0.05-CPU quota a replica node served about half of what the primary node
    // did in the clean-clone CI runs (one replica 68–90 req/s vs the primary 149–154), so that ratio (1.11–1.28
    // there) measured the node difference, not the scaling. Two vs one replica: 2.02–3.37 in five runs with the
    // fewest-in-flight router (2.19–2.44 in the two CI runs before it, 1.72 in the committed full run).
    ratio: 'two_replicas_vs_one_replica',
    min: 1.5,
    needsCap: true,
  },
  {
    scenario: 'orders-growth',
    args: ['--rows', '200000', '--inserts', '2000'],
    env: {},
    ratio: 'month_scan_rows_unpartitioned_vs_partitioned',
    min: 5,
    needsCap: false,
  },
];

await ensureNode();
const caps = (await import(pathToFileURL(join(root, 'docker/local/stack.mjs')).href)).detectCgroup();
ensureDeps();
ensureBuild();
stackUp();
sh(process.execPath, [join(root, 'dist/tools/migrate.js')]);

const rows = [];
const skipped = [];
let failed = 0;
for (const g of gates) {
  if (g.needsCap && caps.mechanism === 'none') {
    skipped.push(`${g.scenario} (${g.ratio}): needs CPU caps, but ${caps.reason}`);
    rows.push(`| ${g.scenario} | ${g.ratio} | – | ≥ ${g.min} | **SKIPPED**: no CPU caps (${caps.reason}) |`);
    continue;
  }
  const out = `load-tests/results/ci/${g.scenario}.json`;
  console.log(`\n› bench ${g.scenario} (short CI run)`);
  const r = spawnSync(process.execPath, [join(root, 'dist/load-tests/runner/bench.js'), g.scenario, ...g.args, '--out', out], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...g.env },
  });
  let value = NaN;
  let omitted = null;
  try {
    const res = JSON.parse(readFileSync(join(root, out), 'utf8'));
    value = res.ratios?.[g.ratio];
    omitted = res.ratiosOmitted?.[g.ratio] ?? null;
  } catch {
    /* reported below */
  }
  if (r.status === 0 && omitted) {
    skipped.push(`${g.scenario} (${g.ratio}): ${omitted}`);
    rows.push(`| ${g.scenario} | ${g.ratio} | – | ≥ ${g.min} | **SKIPPED**: ${omitted} |`);
    continue;
  }
  const ok = r.status === 0 && Number.isFinite(value) && value >= g.min;
  if (!ok) failed++;
  rows.push(`| ${g.scenario} | ${g.ratio} | ${Number.isFinite(value) ? value : `no result (exit ${r.status})`} | ≥ ${g.min} | ${ok ? 'pass' : 'FAIL'} |`);
}
console.log(['\n### benchmark gates', '', '| scenario | ratio | measured | required | result |', '|---|---|---:|---:|---|', ...rows].join('\n'));
for (const line of skipped) console.log(`\nSKIPPED gate ${line}`);
console.log(`\nbench gates: ${gates.length - failed - skipped.length} passed, ${failed} failed, ${skipped.length} SKIPPED${caps.mechanism === 'none' ? '' : ` (CPU caps: cgroup ${caps.mechanism})`}`);
process.exit(failed ? 1 : 0);
