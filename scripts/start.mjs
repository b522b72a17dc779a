#!/usr/bin/env node
// `npm start`: everything a fresh clone needs. Installs dependencies when missing, compiles, brings up
// the native stack (docker/local: primary + 2 replicas, 2 shards, 2 Redis), migrates, seeds a small data
// set once (the admin's generated password goes to var/admin-password), then serves shop-api on
// 127.0.0.1:3000 (HOST changes it) and runs one shorts worker. Ctrl-C stops both (the stack keeps
// running; `npm run stack -- down` stops it).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuild, ensureDeps, ensureNode, root, sh, stackUp } from './bootstrap.mjs';

await ensureNode();
ensureDeps();
ensureBuild();
stackUp();
sh(process.execPath, [join(root, 'dist/tools/migrate.js')]);
sh(process.execPath, [join(root, 'dist/tools/seed.js'), '--if-empty']);

// The trade-off console's experiments (/console) are for this native stack only: on here unless said otherwise,
// off by default elsewhere; never with NODE_ENV=production (the config refuses them there).
const env = { ...(process.env.NODE_ENV === 'production' ? {} : { CONSOLE_EXPERIMENTS: 'on' }), ...process.env };

const children = [
  ['shop-api', 'dist/apps/shop-api/src/main.js'],
  ['shorts-worker', 'dist/apps/shorts-worker/src/main.js'],
].map(([name, entry]) => {
  const child = spawn(process.execPath, [join(root, entry)], { cwd: root, stdio: 'inherit', env });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${code ?? signal}); stopping`);
      stop(code || 1);
    }
  });
  return child;
});

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 3000).unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r))))).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
