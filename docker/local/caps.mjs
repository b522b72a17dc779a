// CPU caps per node with cgroups (v2's cpu.max or v1's CFS quota): benchmarks run the databases on a known
// share of a core, so a ratio between two modes measures the design rather than the machine.
//   STACK_DB_CPU / STACK_REDIS_CPU: cap in cores applied on every start (e.g. 0.1 = 10% of one core).
//   STACK_CGROUP_ROOT: where the cgroup filesystem is (default /sys/fs/cgroup).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { STACK_DIR, fail } from './env.mjs';
import { livePid } from './procs.mjs';

// A node's CPU share is a CFS quota per period. The period is short (10 ms) on purpose: with the kernel's
// default 100 ms a throttled node answers in bursts (90 ms of silence per period) and p99 measures the
// period, not the database. A quota under the kernel's 1 ms minimum stretches the period just enough to
// hold 1 ms (0.05 CPU → 1 ms per 20 ms), the shortest period that can express the cap.
export const CAP_PERIOD_US = 10_000;
// Named after STACK_DIR alone, so every checkout that drives the same stack (git worktrees, CI) finds the same
// cgroups, and a second stack (other STACK_DIR, other ports) gets cgroups of its own.
const CG_NAME = `mallscale-${createHash('sha1').update(STACK_DIR).digest('hex').slice(0, 8)}`;

/** { quotaUs, periodUs } for a cap in cores (null = uncapped: quotaUs -1). */
export function cfsQuota(cpu, period = CAP_PERIOD_US) {
  if (cpu == null) return { quotaUs: -1, periodUs: period };
  let quotaUs = Math.round(cpu * period);
  if (quotaUs < 1000) { period = Math.min(1_000_000, Math.ceil(1000 / cpu)); quotaUs = Math.max(1000, Math.round(cpu * period)); }
  return { quotaUs, periodUs: period };
}
/** cgroup v2's cpu.max line: "<quota> <period>", or "max <period>" uncapped. */
export function formatCpuMax(cpu) {
  const { quotaUs, periodUs } = cfsQuota(cpu);
  return `${quotaUs < 0 ? 'max' : quotaUs} ${periodUs}`;
}
/** cores from a cpu.max line; null when uncapped ("max …"). */
export function parseCpuMax(text) {
  const m = /^\s*(max|\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) fail(`unexpected cpu.max content "${text.trim()}"`);
  return m[1] === 'max' ? null : Number(m[1]) / Number(m[2]);
}
/** The cgroup path of a process's cpu controller from /proc/<pid>/cgroup text ("/" when none). */
export function cpuCgroupPath(procCgroupText, mechanism) {
  const re = mechanism === 'v2' ? /^0::(.*)$/m : /^\d+:(?:[\w,]*,)?cpu(?:,[\w,]*)?:(.*)$/m;
  return re.exec(procCgroupText)?.[1] ?? null;
}

/**
 * Which mechanism can cap CPU here, looked up under fsRoot (a parameter so tests can pass a fake tree):
 * { mechanism: 'v2' | 'v1' | 'none', base, dir, reason } (STACK_CGROUP_ROOT overrides the default root, e.g.
 * where cgroups are mounted elsewhere). v2 = the unified hierarchy (cgroup.controllers
 * at its root, cpu listed); v1 = a mounted cpu controller (cpu/cpu.cfs_quota_us). Either must be writable.
 */
export function detectCgroup(fsRoot = process.env.STACK_CGROUP_ROOT || '/sys/fs/cgroup', name = CG_NAME) {
  const writable = (p) => { try { fs.accessSync(p, fs.constants.W_OK); return true; } catch { return false; } };
  const controllers = path.join(fsRoot, 'cgroup.controllers');
  if (fs.existsSync(controllers)) {
    const list = fs.readFileSync(controllers, 'utf8').trim().split(/\s+/);
    if (!list.includes('cpu')) return { mechanism: 'none', base: fsRoot, dir: null, reason: `cgroup v2 at ${fsRoot} does not offer the cpu controller (cgroup.controllers: ${list.join(' ') || 'empty'})` };
    if (!writable(path.join(fsRoot, 'cgroup.subtree_control'))) return { mechanism: 'none', base: fsRoot, dir: null, reason: `cgroup v2 at ${fsRoot} is not writable by this user (CPU caps need root or a delegated cgroup)` };
    return { mechanism: 'v2', base: fsRoot, dir: path.join(fsRoot, name), reason: '' };
  }
  const v1 = path.join(fsRoot, 'cpu');
  if (fs.existsSync(path.join(v1, 'cpu.cfs_quota_us'))) {
    if (!writable(v1)) return { mechanism: 'none', base: v1, dir: null, reason: `cgroup v1 cpu controller at ${v1} is not writable by this user (CPU caps need root)` };
    return { mechanism: 'v1', base: v1, dir: path.join(v1, name), reason: '' };
  }
  return { mechanism: 'none', base: null, dir: null, reason: `no cgroup cpu controller under ${fsRoot} (neither v2's cgroup.controllers nor v1's cpu/)` };
}

let cgroupCache;
/** detectCgroup() plus the one-time setup (v2: +cpu delegated down to our group); warns once when unusable. */
function cgroup() {
  if (cgroupCache) return cgroupCache;
  let cg = detectCgroup();
  try {
    if (cg.mechanism !== 'none') fs.mkdirSync(cg.dir, { recursive: true });
    if (cg.mechanism === 'v2') {
      // A child gets cpu.max only when every ancestor lists +cpu in cgroup.subtree_control; our group holds no
      // processes itself (nodes live in leaves below it), so the no-internal-processes rule is kept.
      fs.writeFileSync(path.join(cg.base, 'cgroup.subtree_control'), '+cpu');
      fs.writeFileSync(path.join(cg.dir, 'cgroup.subtree_control'), '+cpu');
    }
  } catch (e) {
    cg = { ...cg, mechanism: 'none', reason: `setting up ${cg.dir} failed (${e.code ?? e.message})` };
  }
  if (cg.mechanism === 'none') console.warn(`stack: CPU caps unavailable: ${cg.reason}`);
  return (cgroupCache = cg);
}
function writeCap(cg, n, cpu) { // cpu in cores, or null = uncapped
  const dir = path.join(cg.dir, n.name);
  fs.mkdirSync(dir, { recursive: true });
  if (cg.mechanism === 'v2') {
    fs.writeFileSync(path.join(dir, 'cpu.max'), formatCpuMax(cpu));
  } else {
    const { quotaUs, periodUs } = cfsQuota(cpu);
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), '-1'); // so the period change can never be rejected
    fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(periodUs));
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
  }
  const pid = livePid(n);
  if (pid) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)); // moves all threads
}
/** A restarted node goes back into the cgroup it had (a cap set with `cap` survives kill/start). */
export function joinExistingCgroup(n, pid) {
  const cg = detectCgroup();
  if (cg.mechanism === 'none') return;
  try { fs.writeFileSync(path.join(cg.dir, n.name, 'cgroup.procs'), String(pid)); } catch { /* no cgroup for it */ }
}
/** The process's cap in cores (null = uncapped or unknown), read from the cgroup it is in. */
export function readCap(pid) {
  const cg = detectCgroup();
  if (cg.mechanism === 'none') return null;
  try {
    const rel = cpuCgroupPath(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), cg.mechanism);
    if (rel == null) return null;
    if (cg.mechanism === 'v2') return parseCpuMax(fs.readFileSync(path.join(cg.base, rel, 'cpu.max'), 'utf8'));
    const read = (f) => Number(fs.readFileSync(path.join(cg.base, rel, f), 'utf8'));
    const quota = read('cpu.cfs_quota_us');
    return quota < 0 ? null : quota / read('cpu.cfs_period_us');
  } catch { return null; }
}
function parseCpu(v) {
  if (v == null || v === '' || v === 'off' || v === -1) return null;
  const cpu = Number(v);
  if (!(cpu > 0)) fail(`invalid CPU cap "${v}" (expected cores, e.g. 0.1, or "off")`);
  return cpu;
}
/**
 * CFS throttling counters of each named node's cgroup: { [name]: { periods, throttled } } (null where unknown).
 * A node throttled in nearly every period wanted more CPU than its quota: the cap, nothing else, bounded it.
 */
export function throttleStats(names) {
  const cg = detectCgroup();
  const out = {};
  for (const name of names) {
    out[name] = null;
    if (cg.mechanism === 'none') continue;
    try {
      const text = fs.readFileSync(path.join(cg.dir, name, 'cpu.stat'), 'utf8');
      const num = (k) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(text)?.[1]);
      const periods = num('nr_periods');
      const throttled = num('nr_throttled');
      if (Number.isFinite(periods) && Number.isFinite(throttled)) out[name] = { periods, throttled };
    } catch { /* no cgroup for this node */ }
  }
  return out;
}
/** How CPU caps would be applied here: { mechanism: 'v1'|'v2'|'none', dir, reason }. */
export function capMechanism() {
  const { mechanism, dir, reason } = cgroup();
  return { mechanism, dir, reason };
}
/**
 * Cap (cpu in cores) or uncap (null/'off') the given nodes. Returns what was done:
 * { applied, mechanism, cpu, nodes, periodUs, reason } — applied false (mechanism 'none', reason) when no cgroup
 * cpu controller is writable, so a caller can refuse to call a run "capped".
 */
export function applyCaps(cpu, targets) {
  const cap = parseCpu(cpu);
  const cg = cgroup();
  const result = { applied: false, mechanism: cg.mechanism, dir: cg.dir, cpu: cap, nodes: targets.map((n) => n.name), periodUs: cfsQuota(cap).periodUs, reason: cg.reason };
  if (cg.mechanism === 'none') return result;
  for (const n of targets) writeCap(cg, n, cap);
  // A node this launcher does not run (another STACK_DIR, compose) has no pid to move: its cap is not applied.
  const absent = cap == null ? [] : targets.filter((n) => !livePid(n)).map((n) => n.name);
  if (absent.length) return { ...result, reason: `${absent.join(', ')} not running from ${STACK_DIR} (no pid to move into the cgroup)` };
  return { ...result, applied: true };
}
/** STACK_DB_CPU caps the database nodes among `all`, STACK_REDIS_CPU the Redis ones. */
export function applyEnvCaps(all) {
  for (const [env, pick] of [['STACK_DB_CPU', (n) => n.kind === 'mariadb'], ['STACK_REDIS_CPU', (n) => n.kind !== 'mariadb']]) {
    if (process.env[env]) applyCaps(process.env[env], all.filter(pick));
  }
}
/** Remove the nodes' cgroups and the stack's own (on `down`). */
export function removeCgroups(all) {
  const cg = detectCgroup();
  if (cg.mechanism === 'none') return;
  for (const n of all) try { fs.rmdirSync(path.join(cg.dir, n.name)); } catch { /* absent */ }
  try { fs.rmdirSync(cg.dir); } catch { /* absent or busy */ }
}
