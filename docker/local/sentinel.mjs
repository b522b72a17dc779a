// Redis Sentinel (optional: up --redis sentinel).
// Each Redis role as primary + replica + 3 sentinels, from the same redis-server binary run with --sentinel
// (what Debian's redis-sentinel package runs). The sentinels monitor the named masters mallscale-cache and
// mallscale-queue with a quorum of 2; down-after and failover-timeout are short for a demo (env below).
// Sentinel and replicaof rewrite their own config files (CONFIG REWRITE: current master, epoch, known
// replicas), so these files are written once and then belong to the servers; `reset` deletes them.
//   STACK_SENTINEL_DOWN_AFTER_MS (default 1000): a primary silent this long is subjectively down.
//   STACK_SENTINEL_FAILOVER_TIMEOUT_MS (default 10000): how long one failover attempt may take.
//   STACK_PORT_REDIS_CACHE_REPLICA / _REDIS_QUEUE_REPLICA / _SENTINEL_1.._3: ports (6390, 6391, 26379-26381).
import fs from 'node:fs';
import path from 'node:path';
import { STACK_DIR, envPort, fail, waitFor } from './env.mjs';
import { binaries } from './install.mjs';
import { answers, redis, redisRole } from './clients.mjs';
import { nodes, redisBaseLines, redisRoleLines, startOne, stopOne } from './nodes.mjs';
import { kill, livePid, withLock } from './procs.mjs';

export const SENTINEL_MASTERS = { cache: 'mallscale-cache', queue: 'mallscale-queue' };
const sentinelEnvMs = (name, dflt) => {
  const v = Number(process.env[name] || dflt);
  return Number.isInteger(v) && v >= 100 ? v : fail(`${name} must be an integer >= 100 (ms), got "${process.env[name]}"`);
};

function sentinelNode(dir, name, role, port, writeConf, args = []) {
  const d = path.join(dir, name);
  const n = {
    name, role, kind: 'redis', host: '127.0.0.1', port, dir: d, dataDir: path.join(d, 'data'), tmpDir: path.join(d, 'tmp'),
    socket: path.join(d, 'redis.sock'), pidFile: path.join(d, 'redis.pid'), logFile: path.join(d, 'redis.log'),
    confFile: path.join(d, role === 'sentinel' ? 'sentinel.conf' : 'redis.conf'), writeConf, args, sentinelManaged: true,
  };
  Object.defineProperty(n, 'pid', { enumerable: true, get: () => livePid(n) });
  return n;
}
const writeOnce = (n, lines) => { if (!fs.existsSync(n.confFile)) fs.writeFileSync(n.confFile, ['# generated once by docker/local/stack.mjs; the server rewrites it', ...lines].join('\n') + '\n'); };
/** The primary's settings (eviction, AOF) plus replicaof: a promoted replica must behave like the primary it replaces. */
function dataNodeLines(n, replicaOf) {
  const queue = n.role.startsWith('queue');
  return [...redisBaseLines(n), ...redisRoleLines(queue), ...(replicaOf ? [`replicaof 127.0.0.1 ${replicaOf}`] : [])];
}

/**
 * The sentinel nodes: { dir, groups: [{ role, masterName, primaryPort, replica }], nodes } (not started).
 * By default the primaries are the stack's redis-cache/redis-queue; `ownPrimaries: { cache, queue }` (ports)
 * adds primaries of the group's own (the failure test kills those, never the shared ones). `dir` default:
 * STACK_DIR/sentinel.
 */
export function sentinelTopology({ dir = path.join(STACK_DIR, 'sentinel'), ownPrimaries } = {}) {
  const all = [];
  const groups = ['cache', 'queue'].map((role, i) => {
    let primaryPort = nodes.find((n) => n.role === role)?.port ?? envPort(`redis-${role}`, role === 'cache' ? 6380 : 6381);
    if (ownPrimaries) {
      primaryPort = ownPrimaries[role];
      const p = sentinelNode(dir, `redis-${role}-primary`, role, primaryPort, (n) => writeOnce(n, dataNodeLines(n)));
      all.push(p);
    }
    const replica = sentinelNode(dir, `redis-${role}-replica`, `${role}-replica`, envPort(`redis-${role}-replica`, 6390 + i), (n) => writeOnce(n, dataNodeLines(n, primaryPort)));
    all.push(replica);
    return { role, masterName: SENTINEL_MASTERS[role], primaryPort, replica };
  });
  const downAfter = sentinelEnvMs('STACK_SENTINEL_DOWN_AFTER_MS', 1000);
  const failoverTimeout = sentinelEnvMs('STACK_SENTINEL_FAILOVER_TIMEOUT_MS', 10_000);
  for (let i = 1; i <= 3; i++) {
    const conf = (n) => writeOnce(n, [
      `port ${n.port}`, 'bind 127.0.0.1', 'daemonize no', `pidfile ${n.pidFile}`, 'logfile ""', `dir ${n.dataDir}`,
      ...groups.flatMap((g) => [
        `sentinel monitor ${g.masterName} 127.0.0.1 ${g.primaryPort} 2`,
        `sentinel down-after-milliseconds ${g.masterName} ${downAfter}`,
        `sentinel failover-timeout ${g.masterName} ${failoverTimeout}`,
        `sentinel parallel-syncs ${g.masterName} 1`,
      ]),
    ]);
    all.push(sentinelNode(dir, `sentinel-${i}`, 'sentinel', envPort(`sentinel-${i}`, 26378 + i), conf, ['--sentinel']));
  }
  return { dir, groups, nodes: all, downAfter, failoverTimeout };
}

/** Start the replicas and sentinels (and own primaries) that are not running; wait for replication and quorum. */
export async function upSentinel(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  const topo = sentinelTopology(opts);
  binaries();
  await withLock(async () => {
    const data = topo.nodes.filter((n) => n.role !== 'sentinel');
    await Promise.all(data.map((n) => startOne(n, log)));
    for (const g of topo.groups) await waitFor(`${g.replica.name} to sync with 127.0.0.1:${g.primaryPort}`, async () => /link=connected|role=master/.test(await redisRole(g.replica)));
    const sentinels = topo.nodes.filter((n) => n.role === 'sentinel');
    await Promise.all(sentinels.map((n) => startOne(n, log)));
    // Timeouts apply to sentinels that were already running too (their files keep the first values).
    for (const n of sentinels) for (const g of topo.groups) {
      await redis(n, 'SENTINEL', 'SET', g.masterName, 'down-after-milliseconds', String(topo.downAfter), 'failover-timeout', String(topo.failoverTimeout));
    }
    for (const n of sentinels) for (const g of topo.groups) {
      await waitFor(`${n.name} to see the other sentinels and a replica of ${g.masterName}`, async () => {
        const m = toMap(await redis(n, 'SENTINEL', 'MASTER', g.masterName));
        return Number(m['num-other-sentinels']) >= 2 && Number(m['num-slaves']) >= 1;
      });
    }
  });
  return sentinelStatus(opts);
}
const toMap = (arr) => Object.fromEntries(arr.flatMap((v, i) => (i % 2 ? [] : [[v, arr[i + 1]]])));
/** One row per sentinel-block node, like status(): its replication role, or for a sentinel the masters it names. */
export async function sentinelStatus(opts = {}) {
  const topo = sentinelTopology(opts);
  return Promise.all(topo.nodes.map(async (n) => {
    const pid = livePid(n);
    const row = { name: n.name, role: n.role, kind: n.kind, port: n.port, pid, state: pid ? 'up' : 'down', cap: null, detail: '' };
    if (!pid) return row;
    if (!(await answers(n))) return { ...row, state: 'unresponsive' };
    if (n.role !== 'sentinel') return { ...row, detail: await redisRole(n) };
    const masters = await Promise.all(topo.groups.map(async (g) => `${g.masterName}=${(await redis(n, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', g.masterName).catch(() => null))?.join(':') ?? '?'}`));
    return { ...row, detail: masters.join(' ') };
  }));
}
/** The port the sentinels currently name as the master of a group (what clients are sent to). */
export async function sentinelMaster(masterName, opts = {}) {
  for (const n of sentinelTopology(opts).nodes.filter((x) => x.role === 'sentinel')) {
    const r = await redis(n, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName).catch(() => null);
    if (r) return Number(r[1]);
  }
  return null;
}
/** SIGKILL one node of a sentinel group (failure tests and the redis-failover benchmark); returns its pid or null. */
export async function killSentinelNode(name, opts = {}) {
  const n = sentinelTopology(opts).nodes.find((x) => x.name === name) ?? fail(`no sentinel-group node "${name}"`);
  const pid = livePid(n);
  if (!pid) return null;
  await kill(pid);
  return pid;
}
/** Stop the sentinels first (so stopping a primary starts no failover), then the data nodes; `purge` deletes the dir. */
export async function downSentinel(opts = {}) {
  const topo = sentinelTopology(opts);
  await Promise.all(topo.nodes.filter((n) => n.role === 'sentinel').map(stopOne));
  await Promise.all(topo.nodes.filter((n) => n.role !== 'sentinel').map(stopOne));
  if (opts.purge) fs.rmSync(topo.dir, { recursive: true, force: true });
}
