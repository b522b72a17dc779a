// Shared bootstrap for `npm start`, `npm test` and the run helpers: install dependencies when missing,
// compile when sources are newer than dist/, bring up the native stack. Dependency-free on purpose:
// it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`\n✗ ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return r;
}

export function ensureDeps() {
  const lock = join(root, 'package-lock.json');
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log('› installing dependencies (npm ci)…');
  sh('npm', ['ci', '--no-audit', '--no-fund']);
}

function newest(dir, ext = '.ts') {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'test') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export function ensureBuild() {
  const stamp = join(root, 'dist', '.built');
  const src = Math.max(...['apps', 'libs', 'tools', 'load-tests/runner'].map((d) => newest(join(root, d))), statSync(join(root, 'tsconfig.json')).mtimeMs);
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= src) return;
  console.log('› compiling TypeScript (tsc -p tsconfig.build.json)…');
  sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  sh('touch', [stamp]);
}

export function stackUp() {
  sh(process.execPath, [join(root, 'docker/local/stack.mjs'), 'up']);
}
