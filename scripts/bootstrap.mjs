// Shared bootstrap for `npm start`, `npm test` and the run helpers: run on a supported Node (installing
// one into var/node when the system's is older than package.json's engines.node), install dependencies
// when missing, compile when sources are newer than dist/, bring up the native stack. Dependency-free on
// purpose: it runs before node_modules exists, and possibly on a Node that the dependencies refuse.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The Node the project installs for itself when the system's does not satisfy engines.node: the newest
// LTS build of the line named in .nvmrc. It comes from the npm registry (node-<os>-<arch> packages carry
// the official binaries and headers), because CI machines reach the registry but not nodejs.org.
export const NODE_PIN = '24.22.3';
export const enginesNode = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;

// The subset of semver that engines.node uses: alternatives joined by `||`, each a list of comparators
// (`^x.y.z`, `>=x.y.z`, `>x.y.z`, `<x.y.z`, `<=x.y.z`, `x.y.z`). Anything else is refused, not guessed.
export function satisfies(version, range) {
  const parse = (v) => {
    const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(v.trim());
    if (!m) throw new Error(`engines.node: cannot read version "${v}" in "${range}"`);
    return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  };
  const cmp = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const v = parse(version.replace(/[-+].*$/, ''));
  return range.split('||').some((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .every((c) => {
        const [, op, rest] = /^(\^|>=|<=|>|<|=)?(.*)$/.exec(c);
        const r = parse(rest);
        if (op === '^') return cmp(v, r) >= 0 && v[0] === r[0];
        const d = cmp(v, r);
        return op === '>=' ? d >= 0 : op === '<=' ? d <= 0 : op === '>' ? d > 0 : op === '<' ? d < 0 : d === 0;
      }),
  );
}

function fail(sentence) {
  console.error(`\n✗ ${sentence}`);
  process.exit(1);
}

// Installs Node `version` into var/node/v<version>-<os>-<arch> once (npm pack checks the registry's
// integrity hash; the binary is run before the folder is published by a rename, so a half-extracted or
// foreign binary is never used and two processes racing here cannot break each other). Returns its paths,
// or a reason why not.
export function installNode(version) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const dir = join(root, 'var', 'node', `v${version}-${process.platform}-${process.arch}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(join(dir, '.verified'))) return { dir, bin };
  if (!['linux', 'darwin'].includes(process.platform)) return { error: `no ${pkg} package layout is known here` };
  mkdirSync(dirname(dir), { recursive: true });
  // Left behind by an install that was killed half-way (an hour is far longer than any install takes).
  for (const e of readdirSync(dirname(dir))) {
    const p = join(dirname(dir), e);
    if (e.startsWith('.tmp-') && statSync(p).mtimeMs < Date.now() - 3_600_000) rmSync(p, { recursive: true, force: true });
  }
  const tmp = mkdtempSync(join(dirname(dir), '.tmp-'));
  try {
    console.log(`› installing Node ${version} (npm package ${pkg}@${version}) into ${relative(root, dir)}…`);
    const packed = spawnSync('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--json', '--loglevel=error'], {
      cwd: tmp,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (packed.status !== 0) return { error: `npm pack ${pkg}@${version} failed (exit ${packed.status ?? packed.signal})` };
    const tgz = join(tmp, JSON.parse(packed.stdout)[0].filename);
    const out = join(tmp, 'node');
    mkdirSync(out);
    const untar = spawnSync('tar', ['-xzf', tgz, '-C', out, '--strip-components=1'], { stdio: 'inherit' });
    if (untar.status !== 0) return { error: `extracting ${tgz} failed` };
    const ran = spawnSync(join(out, 'bin', 'node'), ['-p', 'process.version'], { encoding: 'utf8' });
    if (ran.stdout?.trim() !== `v${version}`) return { error: `the extracted binary answered "${(ran.stdout || ran.error?.message || '').trim()}", not v${version}` };
    writeFileSync(join(out, '.verified'), `${JSON.stringify({ version: `v${version}`, from: `${pkg}@${version}` })}\n`);
    try {
      renameSync(out, dir);
    } catch (e) {
      if (!existsSync(join(dir, '.verified'))) return { error: `cannot move it into ${dir} (${e.code})` };
    }
    return { dir, bin };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// Children must run on the same Node as this process: they are spawned with process.execPath, and for
// the ones found on PATH (npm, and the `#!/usr/bin/env node` scripts npm runs) this Node's folder goes first.
export function envFor(bin, env = process.env) {
  const binDir = dirname(bin);
  const path = env.PATH ?? '';
  return {
    ...env,
    PATH: path.split(delimiter)[0] === binDir ? path : `${binDir}${delimiter}${path}`,
    npm_node_execpath: bin,
    NODE: bin,
  };
}

// Runs `bin args` with the terminal, forwards the signals a supervisor or a terminal sends, and ends
// this process the way the child ended (same exit code, or the same signal).
export function runForwarded(bin, args, env, cwd = process.cwd()) {
  const child = spawn(bin, args, { stdio: 'inherit', env, cwd });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];
  const forward = (sig) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const s of signals) process.on(s, forward);
  child.on('error', (e) => fail(`cannot start ${bin}: ${e.message}`));
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) {
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (osConstants.signals[signal] ?? 1)), 1000);
    } else process.exit(code ?? 1);
  });
  return new Promise(() => {});
}

// The Node to run on: this one when it satisfies engines.node, else NODE_PIN installed into var/node.
export function supportedNode() {
  if (satisfies(process.version, enginesNode)) return { bin: process.execPath, switched: false };
  if (!satisfies(NODE_PIN, enginesNode)) fail(`scripts/bootstrap.mjs pins Node ${NODE_PIN}, outside engines.node ${enginesNode}: update NODE_PIN.`);
  const got = installNode(NODE_PIN);
  if (got.error)
    fail(`mallscale needs Node.js ${enginesNode}, this is ${process.version}, and Node ${NODE_PIN} could not be installed from the npm registry (${got.error}): install Node.js ${NODE_PIN.split('.')[0]} LTS (for example \`nvm install\` in this folder) and run again.`);
  return { bin: got.bin, dir: got.dir, switched: true };
}

// Called first by every entry script: re-runs the same script (same arguments, stdio, exit code, signals)
// under a supported Node when this one is not, and makes every child use the Node it runs on.
export async function ensureNode() {
  const node = supportedNode();
  if (node.switched) {
    if (process.env.MALLSCALE_NODE_FROM) fail(`${node.bin} did not satisfy engines.node ${enginesNode} after the switch; remove ${node.dir} and run again.`);
    const env = { ...envFor(node.bin), MALLSCALE_NODE_FROM: process.version, npm_config_nodedir: node.dir };
    await runForwarded(node.bin, [...process.execArgv, ...process.argv.slice(1)], env);
  }
  Object.assign(process.env, envFor(process.execPath));
  if (process.env.MALLSCALE_NODE_FROM) {
    console.log(`› Node ${process.version} (${relative(root, process.execPath)}); the system's ${process.env.MALLSCALE_NODE_FROM} is outside engines.node ${enginesNode}`);
    delete process.env.MALLSCALE_NODE_FROM;
  } else if (process.env.CI) console.log(`› Node ${process.version} (${process.execPath})`);
}

export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`\n✗ ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return r;
}

// node_modules/.mallscale-node.json records the Node ABI the native addons were built for: compiled ones
// (cpu-features, ssh2's crypto binding) load only under that ABI, so a Node switch rebuilds them.
export function ensureDeps() {
  const lock = join(root, 'package-lock.json');
  const marker = join(root, 'node_modules', '.package-lock.json');
  const stampFile = join(root, 'node_modules', '.mallscale-node.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) {
    let built;
    try {
      built = JSON.parse(readFileSync(stampFile, 'utf8'));
    } catch {
      /* never stamped: built by an unknown Node */
    }
    if (built?.abi === process.versions.modules) return;
    console.log(`› node_modules was built for ${built ? `Node ${built.version}` : 'another Node'}: rebuilding native addons for ${process.version} (npm rebuild)…`);
    sh('npm', ['rebuild']);
  } else {
    console.log('› installing dependencies (npm ci)…');
    sh('npm', ['ci', '--no-audit', '--no-fund']);
  }
  writeFileSync(stampFile, `${JSON.stringify({ version: process.version, abi: process.versions.modules })}\n`);
}

// .js too: plain-JS sources tsc copies into dist (allowJs), e.g. libs/db/src/dialect-sql.js.
function newest(dir, exts = ['.ts', '.js']) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'test') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export function ensureBuild() {
  const stamp = join(root, 'dist', '.built');
  const src = Math.max(...['apps', 'libs', 'tools', 'load-tests/runner', 'load-tests/scenarios'].map((d) => newest(join(root, d))), statSync(join(root, 'tsconfig.json')).mtimeMs);
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= src) return;
  console.log('› compiling TypeScript (tsc -p tsconfig.build.json)…');
  sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  sh('touch', [stamp]);
}

export function stackUp() {
  sh(process.execPath, [join(root, 'docker/local/stack.mjs'), 'up']);
}
