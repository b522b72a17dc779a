#!/usr/bin/env node
// CI smoke on the other LTS lines engines.node admits (the full suite runs on .nvmrc's line): the type-check
// and a few specs that load every native addon, boot shop-api on the real stack and spawn a child process,
// each on Node 22 (the lowest line allowed) and Node 26. They share node_modules, which is fine because the
// addons these specs load are Node-API (ABI-stable); the ABI-bound ones (ssh2/cpu-features) are unused here.
// Needs the stack up and node_modules installed (CI runs it after `npm test`). Cheap: ~20 s a line once
// the binaries are in var/node.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { enginesNode, ensureBuild, ensureDeps, ensureNode, envFor, installNode, root, satisfies } from './bootstrap.mjs';

const LINES = ['22.23.5', '26.12.1'];
const SPECS = ['libs/core/test/config.spec.ts', 'apps/shop-api/test/auth.spec.ts', 'apps/shop-api/test/startup.spec.ts'];

await ensureNode();
ensureDeps();
ensureBuild();
let failed = 0;
for (const version of LINES) {
  if (!satisfies(version, enginesNode)) throw new Error(`smoke line ${version} is outside engines.node ${enginesNode}`);
  const node = installNode(version);
  if (node.error) {
    console.error(`✗ Node ${version}: ${node.error}`);
    failed++;
    continue;
  }
  const env = { ...envFor(node.bin), NODE_OPTIONS: '--experimental-vm-modules --no-warnings=ExperimentalWarning' };
  const run = (args) => spawnSync(node.bin, args, { cwd: root, stdio: 'inherit', env }).status;
  console.log(`\n› smoke on Node ${version}: type-check, ${SPECS.length} specs`);
  const tsc = run([join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);
  const jest = run([join(root, 'node_modules/jest/bin/jest.js'), '--verbose=false', ...SPECS]);
  if (tsc !== 0 || jest !== 0) failed++;
  console.log(`› Node ${version}: ${tsc === 0 && jest === 0 ? 'pass' : 'FAIL'}`);
}
process.exit(failed ? 1 : 0);
