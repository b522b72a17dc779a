/**
 * Where a result came from, recorded in every result file: the commit (and whether the tree was dirty), the
 * machine, the software versions, the load on the box before and after, the caps asked for and applied, the
 * command line and how long each mode ran. Plus per-process CPU accounting from /proc, which tells whether a
 * capped run was bound by the nodes it claims to measure.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, platform } from 'node:os';

export type CapMechanism = 'v1' | 'v2' | 'none';

export interface CapRecord {
  /** Cores asked for (null = this mode runs uncapped). */
  requested: number | null;
  applied: boolean;
  mechanism: CapMechanism | null;
  nodes: string[];
  periodUs?: number;
  reason?: string;
}

export interface Provenance {
  commit: string | null;
  dirty: boolean | null;
  date: string;
  machine: { cores: number; cpuModel: string | null; memoryMb: number; os: string };
  node: string;
  database: string | null;
  redis: string | null;
  loadavg: { before: number[]; after: number[] | null };
  caps: {
    mechanism: CapMechanism | null;
    reason?: string;
    uncappedOk: boolean;
    calibration?: unknown;
    modes: Record<string, CapRecord>;
  };
  command: string;
  modeDurationsS: Record<string, number>;
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function git(root: string, args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

/** The parts known before the run starts; versions are asked from the servers by the caller. */
export function baseProvenance(root: string, argv: string[] = process.argv): Provenance {
  const commit = git(root, ['rev-parse', 'HEAD']);
  const porcelain = commit ? git(root, ['status', '--porcelain', '--untracked-files=no']) : null;
  return {
    commit,
    dirty: porcelain == null ? null : porcelain.length > 0,
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryMb: Math.round(totalmem() / 2 ** 20), os: `${platform()} ${release()}` },
    node: process.version,
    database: null,
    redis: null,
    loadavg: { before: loadavg().map((l) => round(l)), after: null },
    caps: { mechanism: null, uncappedOk: false, modes: {} },
    command: [...settingsFromEnv(), 'npm run bench --', ...argv.slice(2)].join(' '),
    modeDurationsS: {},
  };
}

/**
 * The environment a run was given that changes what it measures (scenario knobs and the app's limits), as
 * `NAME=value` words in front of the command, so the command line reproduces the run. Secrets and URLs are
 * never recorded.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const knob = /^(BENCH_|RATE_LIMIT|CACHE_|AUTH_HASH|SHORTS_|REPLICA_|MAX_REPLICA|STACK_(DB|REDIS)_CPU)/;
  return Object.keys(env)
    .filter((k) => knob.test(k) && !/URL|SECRET|PASSWORD|KEY/.test(k))
    .sort()
    .map((k) => `${k}=${env[k]}`);
}

export function finishProvenance(p: Provenance): Provenance {
  p.loadavg.after = loadavg().map((l) => round(l));
  return p;
}

/** `SELECT VERSION()` on the primary and Redis's INFO server `redis_version`; null (never a failure) when unreachable. */
export async function serverVersions(load: (s: string) => Promise<any>, primaryUrl: string, redisUrl: string): Promise<{ database: string | null; redis: string | null }> {
  let database: string | null = null;
  let redis: string | null = null;
  try {
    const mysql = await load('mysql2/promise');
    const u = new URL(primaryUrl);
    // No database in the connection: the version is wanted even on a stack that is not migrated yet.
    const conn = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
    try {
      const [[row]] = await conn.query('SELECT VERSION() AS v');
      database = String(row.v);
    } finally {
      await conn.end();
    }
  } catch {
    /* recorded as null */
  }
  try {
    const { Redis } = await load('ioredis');
    const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    try {
      await client.connect();
      redis = /^redis_version:(.+)$/m.exec(await client.info('server'))?.[1]?.trim() ?? null;
    } finally {
      client.disconnect();
    }
  } catch {
    /* recorded as null */
  }
  return { database, redis };
}

// ---------------------------------------------------------------- per-process CPU from /proc
let clkTck: number | null = null;
function ticksPerSecond(): number {
  if (clkTck == null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process in seconds from the text of /proc/<pid>/stat (the name may hold spaces and parens). */
export function cpuSecondsFromStat(statText: string, hz = ticksPerSecond()): number {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / hz;
}

export function processCpuSeconds(pid: number): number | null {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  try {
    return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** A CPU snapshot of named processes; `since(snapshot)` gives each one's cores used over the elapsed wall time. */
export function cpuSnapshot(pids: Record<string, number | null | undefined>) {
  const t0 = process.hrtime.bigint();
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? processCpuSeconds(pid) : null]));
  return {
    since(): Record<string, number | null> {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      return Object.fromEntries(
        Object.entries(pids).map(([k, pid]) => {
          const a = before[k];
          const b = pid ? processCpuSeconds(pid) : null;
          return [k, a == null || b == null || wall <= 0 ? null : round((b - a) / wall, 3)];
        }),
      );
    },
  };
}

/** A capped node using at least this share of its quota is saturated: the cap, not something else, bounds it. */
export const SATURATION = 0.85;
/** Or: its cgroup was throttled in at least this share of the CFS periods of the window (it wanted more CPU). */
export const THROTTLED = 0.9;

/** Throttling counters of a node's cgroup over the measured window (cpu.stat deltas). */
export interface Throttle {
  periods: number;
  throttled: number;
}

/**
 * Whether a mode was bound by the capped nodes it names: caps applied, and at least one named node saturated —
 * it used ≥ 85 % of its quota (from /proc) or was throttled in ≥ 90 % of the window's CFS periods (its cgroup's
 * cpu.stat; at small quotas a node can be throttled in every period while /proc shows less than its quota).
 * One is enough: under round-robin with a closed-loop load the slowest capped node sets the pace and the others
 * idle part of the time, so "every node saturated" would reject runs the cap really bounds. None saturated means
 * something else (the API, the load generator) was the bottleneck, and ratios over the mode are not reported.
 * Returns { capacityBound, reason } (reason: how far each named node fell short).
 */
export function saturationVerdict(
  boundBy: string[],
  cpu: Record<string, number | null>,
  cap: CapRecord,
  throttle: Record<string, Throttle | null> = {},
): { capacityBound: boolean; reason: string } {
  if (!cap.applied || cap.requested == null) return { capacityBound: false, reason: 'its caps were not applied' };
  const below: string[] = [];
  for (const node of boundBy) {
    const used = cpu[node];
    const t = throttle[node];
    const throttledShare = t && t.periods >= 10 ? t.throttled / t.periods : null;
    if (!cap.nodes.includes(node)) below.push(`${node} not capped`);
    else if (throttledShare != null && throttledShare >= THROTTLED) return { capacityBound: true, reason: '' };
    else if (used == null) below.push(`${node}: CPU use unknown`);
    else if (used >= SATURATION * cap.requested) return { capacityBound: true, reason: '' };
    else {
      const th = throttledShare == null ? '' : `, throttled in ${Math.round(throttledShare * 100)} % of periods`;
      below.push(`${node} used ${Math.round((used / cap.requested) * 100)} % of its ${cap.requested} CPU quota${th}`);
    }
  }
  return { capacityBound: false, reason: `no named node saturated: ${below.join('; ')}` };
}
