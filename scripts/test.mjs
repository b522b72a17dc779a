#!/usr/bin/env node
// `npm test`: installs dependencies when missing, compiles, type-checks, lints, brings up the native
// stack (jest's globalSetup does it too, and migrates the test databases), then runs every test:
// first the suite in parallel, then the failure tests (*.chaos.spec.ts: they kill and lag real nodes,
// so they run alone, one file at a time). Extra arguments go to jest.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuild, ensureDeps, ensureNode, root, sh } from './bootstrap.mjs';

await ensureNode();
ensureDeps();
ensureBuild();
const args = process.argv.slice(2);
if (args.length === 0) {
  console.log('› type-check (tsc --noEmit)');
  sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);
  console.log('› lint (oxlint, module boundaries)');
  sh('npm', ['run', '--silent', 'lint']);
}
const jest = [join(root, 'node_modules/jest/bin/jest.js')];
const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim() };
const run = (extra) => spawnSync(process.execPath, [...jest, ...extra], { stdio: 'inherit', cwd: root, env }).status ?? 1;

let status;
if (args.length) {
  status = run(args);
} else {
  status = run(['--testPathIgnorePatterns', '\\.chaos\\.spec\\.ts$']);
  const chaos = run(['--runInBand', '--testPathPatterns', '\\.chaos\\.spec\\.ts$', '--passWithNoTests']);
  status = status || chaos;
}
process.exit(status);
