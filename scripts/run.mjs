#!/usr/bin/env node
// Runs a compiled TypeScript entry point (e.g. tools/migrate.js) after making sure the build is current.
// Usage: node scripts/run.mjs <path relative to dist> [args...]
import { spawnSync } from 'node:child_process';
import { ensureDeps, ensureBuild, ensureNode, root } from './bootstrap.mjs';

await ensureNode();
const [entry, ...args] = process.argv.slice(2);
ensureDeps();
ensureBuild();
const r = spawnSync(process.execPath, [`${root}/dist/${entry}`, ...args], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
