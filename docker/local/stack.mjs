#!/usr/bin/env node
// Native stack launcher: the same topology as docker compose (catalog primary + 2 GTID replicas,
// 2 order shards, redis-cache, redis-queue), started from the system's mariadbd/mysqld and
// redis-server binaries in a folder of its own (STACK_DIR, default <repo>/var/stack).
// Why: CI machines and many laptops have no Docker, yet the tests need *real* binlog/GTID
// replication (lag, failover, read-your-writes) rather than one server pretending to be five.
// Plain .mjs run by Node: jest's globalSetup imports it before anything is built (its one npm dependency,
// ioredis, is installed by then).
//
// This file is the launcher's public face (tests, tools, benchmarks and libs/testing/src/native-stack.ts import
// it): the stack-wide operations below, and the rest re-exported from one module per concern:
//   env.mjs          STACK_DIR, ports, shared helpers        install.mjs   binaries, apt-get, the server's SQL dialect
//   nodes.mjs        topology, config files, start/stop one  procs.mjs     pid files, detached processes, the lock
//   clients.mjs      root SQL over the socket, Redis (ioredis) accounts.mjs  the app's least-privilege accounts
//   replication.mjs  GTID set-up, promote, failover          caps.mjs      cgroup v1/v2 CPU caps
//   sentinel.mjs     Redis Sentinel groups                   edge.mjs      the Varnish edge cache
//   shards.mjs       add-shard (shard-2)                     status.mjs    status rows and the table
//   cli.mjs          the command line (`npm run stack -- <command>`; `node docker/local/stack.mjs` with no command lists them)
//
// Env: STACK_DIR, STACK_PORT_<NAME> (e.g. STACK_PORT_REPLICA_1), STACK_NODES (run only these nodes), STACK_DB_CPU / STACK_REDIS_CPU
// (CPU cap in cores via cgroup v2's cpu.max or v1's CFS quota, e.g. 0.1 = 10% of one core), STACK_CGROUP_ROOT
// (where the cgroup filesystem is, default /sys/fs/cgroup).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, STACK_DIR, fail } from './env.mjs';
import { binaries } from './install.mjs';
import { ensureUsers } from './accounts.mjs';
import { applyCaps, applyEnvCaps, removeCgroups } from './caps.mjs';
import { edge, edgeStatus, startEdge, stopEdge } from './edge.mjs';
import { addedShards, addedShardsInUse, isDb, nodeNamed, nodes, startOne, stopOne } from './nodes.mjs';
import { kill, livePid, withLock } from './procs.mjs';
import { ensureReplication } from './replication.mjs';
import { downSentinel, sentinelTopology } from './sentinel.mjs';
import { nodeRow, printTable } from './status.mjs';

export { APP_ACCOUNTS } from './accounts.mjs';
export { CAP_PERIOD_US, capMechanism, cfsQuota, cpuCgroupPath, detectCgroup, formatCpuMax, parseCpuMax, throttleStats } from './caps.mjs';
export { edge, edgeSiteVcl, startEdge, stopEdge } from './edge.mjs';
export { addedShards, catalogRoles, nodes } from './nodes.mjs';
export { failover, promote, startReplicaSql, stopReplicaSql } from './replication.mjs';
export { SENTINEL_MASTERS, downSentinel, killSentinelNode, sentinelMaster, sentinelStatus, sentinelTopology, upSentinel } from './sentinel.mjs';
export { addShard } from './shards.mjs';
export { printTable } from './status.mjs';

/** Every node the launcher knows by name: the topology, the added shard, the sentinel group. */
const byName = (name) => nodeNamed(name, [...nodes, ...addedShards, ...sentinelTopology().nodes]);
/** The nodes that count now: the topology and the added shards whose datadir exists. */
const inUse = () => [...nodes, ...addedShardsInUse()];

/** Start every node that is not running, set up users and replication, apply caps. Returns status(). */
export async function up(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  binaries();
  const rows = await withLock(async () => {
    await Promise.all(nodes.map((n) => startOne(n, log))); // replicas replay the primary's whole binlog, so order is free
    await Promise.all(nodes.filter((n) => n.role === 'primary' || n.role === 'shard').map(ensureUsers));
    await Promise.all(nodes.filter((n) => n.role === 'replica').map((n) => ensureReplication(n)));
    applyEnvCaps(inUse());
    if (opts.edge) await startEdge(edge);
    return status();
  });
  if (!opts.quiet) printTable(rows);
  return rows;
}

/** One row per node: { name, role, kind, port, pid, state: up|down|unresponsive|replication-down, cap, detail, replication? }. */
export async function status() {
  const [rows, edgeRow] = await Promise.all([Promise.all(inUse().map(nodeRow)), edgeStatus()]);
  return edgeRow ? [...rows, edgeRow] : rows;
}

/** Stop all nodes (SIGTERM, SIGKILL after 30 s) and remove their cgroups. Data is kept. */
export async function down() {
  await withLock(async () => {
    await downSentinel();
    if (fs.existsSync(path.join(STACK_DIR, 'galera'))) await (await import('./galera.mjs')).downGalera();
    await Promise.all([...[...nodes, ...addedShards].map(stopOne), stopEdge()]);
  });
  removeCgroups([...nodes, ...addedShards]);
}

/** down + delete STACK_DIR. */
export async function reset() {
  if ([path.parse(STACK_DIR).root, REPO, process.env.HOME].includes(STACK_DIR)) fail(`refusing to delete STACK_DIR=${STACK_DIR}`);
  await withLock(async () => {
    await down();
    fs.rmSync(STACK_DIR, { recursive: true, force: true });
  });
}

/** SIGKILL a node (failure tests). Returns the killed pid, or null if it was not running. */
export async function killNode(name) {
  const pid = livePid(byName(name));
  if (!pid) return null;
  await kill(pid);
  return pid;
}

/** Start one node again; a replica resumes from the replication state persisted in its datadir. */
export async function startNode(name) {
  const n = byName(name);
  binaries();
  return withLock(async () => {
    await startOne(n, () => {});
    if (n.role === 'replica') await ensureReplication(n);
    applyEnvCaps(inUse());
    return (await status()).find((r) => r.name === name);
  });
}

/**
 * Cap (cpu in cores) or uncap (null/'off') the given nodes; default: all database nodes. Returns what was done:
 * { applied, mechanism, cpu, nodes, periodUs, reason } — applied false (mechanism 'none', reason) when no cgroup
 * cpu controller is writable, so a caller can refuse to call a run "capped".
 */
export async function setCpuCap(cpu, names) {
  return applyCaps(cpu, names?.length ? names.map(byName) : inUse().filter(isDb));
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  // Not awaited: cli.mjs imports this module, which must finish evaluating first.
  import('./cli.mjs').then(({ main }) => main(process.argv.slice(2)))
    .then((code) => process.exit(code), (err) => { console.error(`stack: ${err.message}`); process.exit(1); });
}
