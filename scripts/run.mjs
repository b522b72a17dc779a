#!/usr/bin/env node
// Runs a compiled TypeScript entry point (e.g. tools/migrate.js) after making sure the build is current.
// Usage: node scripts/run.mjs <path relative to dist> [args...]
import { ensureDeps, ensureBuild, ensureNode, root, runForwarded } from './bootstrap.mjs';

await ensureNode();
const [entry, ...args] = process.argv.slice(2);
ensureDeps();
ensureBuild();
// Forwarded rather than waited for synchronously, so a SIGTERM sent to this process reaches the tool too.
await runForwarded(process.execPath, [`${root}/dist/${entry}`, ...args], process.env, root);
