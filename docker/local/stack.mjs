#!/usr/bin/env node
// Native stack launcher: the same topology as docker compose (catalog primary + 2 GTID replicas,
// 2 order shards, redis-cache, redis-queue), started from the system's mariadbd/mysqld and
// redis-server binaries in a folder of its own (STACK_DIR, default <repo>/var/stack).
// Why: CI machines and many laptops have no Docker, yet the tests need *real* binlog/GTID
// replication (lag, failover, read-your-writes) rather than one server pretending to be five.
// No npm dependencies on purpose: jest globalSetup imports it before anything is built.
//
//   node docker/local/stack.mjs up [--redis sentinel] [--edge] [--catalog galera]|down|status|reset|kill <node>|start <node>|cap <cpu|off> [node...]
//                               |add-shard|promote <replica>|failover
//
// Env: STACK_DIR, STACK_PORT_<NAME> (e.g. STACK_PORT_REPLICA_1), STACK_NODES (run only these nodes), STACK_DB_CPU / STACK_REDIS_CPU
// (CPU cap in cores via cgroup v2's cpu.max or v1's CFS quota, e.g. 0.1 = 10% of one core), STACK_CGROUP_ROOT
// (where the cgroup filesystem is, default /sys/fs/cgroup).
import { spawn, spawnSync, execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_DIR = path.join(REPO, 'var', 'stack');
const STACK_DIR = path.resolve(process.env.STACK_DIR || DEFAULT_DIR);
const NODE_TIMEOUT_MS = 60_000;
const IS_ROOT = process.getuid?.() === 0;
// ffmpeg: the shorts model (libs/shorts-model) and its tests run the system ffmpeg/ffprobe.
// chromium: the headless-browser test of My page (apps/web/test, playwright-core drives Debian's chromium);
// optional: installed when apt-get can, never a reason to refuse starting the stack.
const DEBIAN_PACKAGES = 'mariadb-server mariadb-client redis-server ffmpeg chromium';

// ---------------------------------------------------------------- topology
const TOPOLOGY = [
  // name, role, kind, default port, server_id
  ['primary', 'primary', 'mariadb', 3307, 1],
  ['replica-1', 'replica', 'mariadb', 3308, 2],
  ['replica-2', 'replica', 'mariadb', 3309, 3],
  ['shard-0', 'shard', 'mariadb', 3310, 10],
  ['shard-1', 'shard', 'mariadb', 3311, 11],
  ['redis-cache', 'cache', 'redis', 6380],
  ['redis-queue', 'queue', 'redis', 6381],
];

/** Resolved config. `pid` is a getter: the live server pid, or null when the node is down. */
// STACK_NODES=primary,replica-1,replica-2 runs only those nodes (a private catalog for promotion tests).
const ONLY = process.env.STACK_NODES ? process.env.STACK_NODES.split(',').map((s) => s.trim()).filter(Boolean) : null;
const nodeOf = ([name, role, kind, port, serverId]) => {
  const dir = path.join(STACK_DIR, name);
  const isRedis = kind === 'redis';
  const catalog = role === 'primary' || role === 'replica';
  const n = {
    name, kind, catalog, host: '127.0.0.1', serverId: serverId ?? null, dir,
    port: Number(process.env[`STACK_PORT_${name.toUpperCase().replace(/-/g, '_')}`] || port),
    dataDir: path.join(dir, 'data'),
    tmpDir: path.join(dir, 'tmp'), // a private tmpdir: parallel mariadbd's collide on /tmp temp-table names
    socket: path.join(dir, isRedis ? 'redis.sock' : 'mysqld.sock'),
    pidFile: path.join(dir, `${kind}.pid`),
    logFile: path.join(dir, `${kind}.log`),
    confFile: path.join(dir, isRedis ? 'redis.conf' : 'my.cnf'),
  };
  Object.defineProperty(n, 'pid', { enumerable: true, get: () => livePid(n) });
  // A catalog node's role is whatever the last promote/failover made it (catalogRoles(), STACK_DIR/catalog-roles.json).
  Object.defineProperty(n, 'role', { enumerable: true, get: () => (catalog ? (catalogRoles().primary === name ? 'primary' : 'replica') : role) });
  return n;
};
export const nodes = TOPOLOGY.filter(([name]) => !ONLY || ONLY.includes(name)).map(nodeOf);
const byName = (name) => [...nodes, ...addedShards].find((n) => n.name === name) ?? sentinelTopology().nodes.find((n) => n.name === name)
  ?? fail(`unknown node "${name}" (one of: ${[...nodes, ...addedShards, ...sentinelTopology().nodes].map((n) => n.name).join(', ')})`);
const isDb = (n) => n.kind === 'mariadb';
const primaryNode = () => nodes.find((n) => n.role === 'primary') ?? fail('no catalog primary in this stack');

function fail(msg) { throw new Error(msg); }

// ---------------------------------------------------------------- binaries
let bins;
function which(name) {
  const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

function findBinaries() {
  const b = {
    server: which('mariadbd') || which('mysqld'),
    install: which('mariadb-install-db') || which('mysql_install_db'),
    client: which('mariadb') || which('mysql'),
    redis: which('redis-server'),
    ffmpeg: which('ffmpeg') && which('ffprobe'),
    chromium: which('chromium'),
  };
  if (b.server) {
    b.version = execFileSync(b.server, ['--version']).toString().trim();
    b.mysql8 = !/mariadb/i.test(b.version); // Debian's mysqld is MariaDB; real MySQL initialises itself
  }
  const missing = Object.entries({ 'mariadbd/mysqld': b.server, 'mariadb/mysql client': b.client, 'redis-server': b.redis, 'ffmpeg/ffprobe': b.ffmpeg,
    'mariadb-install-db': b.mysql8 ? 'n/a' : b.install }).filter(([, v]) => !v).map(([k]) => k);
  return { b, missing };
}

function binaries() {
  if (bins) return bins;
  let { b, missing } = findBinaries();
  if ((missing.length || !b.chromium) && IS_ROOT && which('apt-get')) {
    console.log(`stack: missing ${[...missing, ...(b.chromium ? [] : ['chromium (optional)'])].join(', ')}; installing ${DEBIAN_PACKAGES} with apt-get`);
    const apt = (...a) => execFileSync('apt-get', a, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    try { apt('install', '-y', ...DEBIAN_PACKAGES.split(' ')); } catch {
      try { apt('update'); apt('install', '-y', ...DEBIAN_PACKAGES.split(' ')); } catch (e) { if (missing.length) throw e; console.log('stack: could not install chromium; only the browser test needs it'); }
    }
    ({ b, missing } = findBinaries());
  }
  if (missing.length) fail(`missing ${missing.join(', ')}. Install the Debian packages: sudo apt-get install -y ${DEBIAN_PACKAGES}`);
  return (bins = b);
}

// SQL that differs between MariaDB and MySQL 8.x (MariaDB is what the native stack normally runs).
function dialect() {
  if (binaries().mysql8) return {
    changeMaster: (port) => `CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=${port}, SOURCE_USER='repl', SOURCE_PASSWORD='repl', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1`,
    start: 'START REPLICA', startSql: 'START REPLICA SQL_THREAD', stopSql: 'STOP REPLICA SQL_THREAD', status: 'SHOW REPLICA STATUS',
    pos: "SELECT REPLACE(@@global.gtid_executed, '\\n', '')", wait: (pos, s) => `SELECT WAIT_FOR_EXECUTED_GTID_SET('${pos}', ${s})`,
    // promote / failover (below)
    stop: 'STOP REPLICA', resetAll: 'RESET REPLICA ALL',
    readOnly: (on) => (on ? 'SET GLOBAL super_read_only=ON' : 'SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF'),
    adoptOwnPosition: null, // SOURCE_AUTO_POSITION starts from gtid_executed by itself
    transactions: (set) => set.split(',').reduce((sum, part) => sum + part.split(':').slice(1) // uuid:1-5:7 -> 6
      .reduce((k, iv) => { const [a, b = a] = iv.split('-').map(Number); return k + (b - a + 1); }, 0), 0),
  };
  return {
    changeMaster: (port) => `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${port}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`,
    start: 'START SLAVE', startSql: 'START SLAVE SQL_THREAD', stopSql: 'STOP SLAVE SQL_THREAD', status: 'SHOW SLAVE STATUS',
    pos: 'SELECT @@global.gtid_binlog_pos', wait: (pos, s) => `SELECT MASTER_GTID_WAIT('${pos}', ${s})`,
    // promote / failover (below)
    stop: 'STOP SLAVE', resetAll: 'RESET SLAVE ALL',
    readOnly: (on) => `SET GLOBAL read_only=${on ? 'ON' : 'OFF'}`,
    // A node that was never a replica (or was promoted since) replicates from what it already has, not from an
    // empty or stale gtid_slave_pos (which would replay, or skip, transactions).
    adoptOwnPosition: 'SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos',
    transactions: (pos) => pos.split(',').filter(Boolean).reduce((sum, g) => sum + Number(g.split('-')[2] || 0), 0), // domain-server-seq
  };
}

// ---------------------------------------------------------------- config files
function writeMyCnf(n) {
  const mysql8 = binaries().mysql8;
  const lines = [
    '# generated by docker/local/stack.mjs; rewritten on every start', '[mysqld]',
    `datadir=${n.dataDir}`, `tmpdir=${n.tmpDir}`, `socket=${n.socket}`, `pid-file=${n.pidFile}`, `port=${n.port}`,
    'bind-address=127.0.0.1', 'skip-name-resolve', `server_id=${n.serverId}`,
    'log_bin=binlog', 'binlog_format=ROW', 'sync_binlog=0',
    'innodb_buffer_pool_size=128M', 'innodb_flush_log_at_trx_commit=2', 'max_connections=500',
    'performance_schema=OFF', 'character-set-server=utf8mb4', 'collation-server=utf8mb4_unicode_ci', 'event_scheduler=OFF',
    ...(mysql8
      ? ['gtid_mode=ON', 'enforce_gtid_consistency=ON', 'mysqlx=OFF', 'session_track_gtids=OWN_GTID']
      : ['log_slave_updates=ON', 'gtid_strict_mode=ON', 'innodb_log_file_size=64M',
        'session_track_system_variables=autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid']),
    ...(n.role === 'replica' ? ['read_only=ON', `relay_log=${path.join(n.dir, 'relay-bin')}`, ...(mysql8 ? ['super_read_only=ON'] : [])] : []),
  ];
  fs.writeFileSync(n.confFile, lines.join('\n') + '\n');
}

function writeRedisConf(n) {
  const queue = n.role === 'queue';
  const lines = [
    '# generated by docker/local/stack.mjs; rewritten on every start',
    `port ${n.port}`, 'bind 127.0.0.1', 'daemonize no', `pidfile ${n.pidFile}`, 'logfile ""',
    `dir ${n.dataDir}`, `unixsocket ${n.socket}`, 'unixsocketperm 700', 'save ""',
    ...(queue
      ? ['maxmemory-policy noeviction', 'appendonly yes', 'appendfsync everysec'] // BullMQ must never lose keys
      : ['maxmemory 256mb', 'maxmemory-policy allkeys-lru', 'appendonly no']),
  ];
  fs.writeFileSync(n.confFile, lines.join('\n') + '\n');
}

// ---------------------------------------------------------------- processes
function readPid(n) {
  try { return Number(fs.readFileSync(n.pidFile, 'utf8').trim()) || null; } catch { return null; }
}
function isAlive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return true; } // no /proc (macOS)
}
/** pid from the pid file, if it is alive and really our server (guards against pid reuse). */
function livePid(n) {
  const pid = readPid(n);
  if (!pid || !isAlive(pid)) return null;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(n.kind === 'redis' ? 'redis' : n.confFile)) return null;
  } catch { /* no /proc: trust the pid file */ }
  return pid;
}
async function waitDead(pid, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (!isAlive(pid)) return true;
  return !isAlive(pid);
}
function logTail(n, lines = 15) {
  try { return fs.readFileSync(n.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}
function spawnDetached(n, cmd, args) {
  fs.appendFileSync(n.logFile, `\n==== stack.mjs: starting ${n.name} at ${new Date().toISOString()} ====\n`);
  const fd = fs.openSync(n.logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], cwd: n.dir });
  fs.closeSync(fd);
  child.on('error', () => {});
  child.unref();
  fs.writeFileSync(n.pidFile, `${child.pid}\n`);
  return child.pid;
}

// ---------------------------------------------------------------- talking to the servers
function tcpProbe(port, timeout = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeout, () => done(false));
    s.on('connect', () => done(true)).on('error', () => done(false));
  });
}

/** Run SQL as root over the node's unix socket; returns the raw tab-separated output. */
async function sql(n, query, { vertical = false, timeout = 15_000 } = {}) {
  const args = ['--no-defaults', '-uroot', `--socket=${n.socket}`, '--batch', ...(vertical ? ['-E'] : ['--skip-column-names']), '-e', query];
  const { stdout } = await run(binaries().client, args, { timeout });
  return stdout.trim();
}

// Minimal RESP client (PING, CONFIG GET): redis-cli is optional.
function parseResp(s, i = 0) { // -> [value, next] or undefined when incomplete
  const eol = s.indexOf('\r\n', i);
  if (eol < 0) return undefined;
  const t = s[i], line = s.slice(i + 1, eol);
  if (t === '+' || t === ':') return [line, eol + 2];
  if (t === '-') return [new Error(line), eol + 2];
  if (t === '$') {
    const len = Number(line);
    if (len < 0) return [null, eol + 2];
    return s.length < eol + 4 + len ? undefined : [s.slice(eol + 2, eol + 2 + len), eol + 4 + len];
  }
  const out = []; // '*'
  let p = eol + 2;
  for (let k = 0; k < Number(line); k++) {
    const r = parseResp(s, p);
    if (!r) return undefined;
    [out[k], p] = r;
  }
  return [out, p];
}
function redisCmd(n, ...args) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: n.port });
    let buf = '';
    s.setTimeout(2000, () => { s.destroy(); reject(new Error(`${n.name}: redis timeout`)); });
    s.on('error', reject);
    s.on('connect', () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    s.on('data', (d) => {
      const r = parseResp((buf += d.toString('latin1')));
      if (!r) return;
      s.destroy();
      r[0] instanceof Error ? reject(r[0]) : resolve(r[0]);
    });
  });
}

// mariadbd is asked over its socket (it opens the TCP port before the socket); a bare TCP probe
// would log an "Aborted connection ... unauthenticated" warning on every status call.
async function answers(n) {
  try {
    return n.kind === 'redis' ? (await redisCmd(n, 'PING')) === 'PONG' : (await sql(n, 'SELECT @@port', { timeout: 5000 })) === String(n.port);
  } catch { return false; }
}

async function waitReady(n, pid, ms = NODE_TIMEOUT_MS) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(150)) {
    if (!isAlive(pid)) fail(`${n.name} (port ${n.port}) exited during startup; last lines of ${n.logFile}:\n${logTail(n)}`);
    if (await answers(n)) return;
  }
  fail(`${n.name} (port ${n.port}) did not answer within ${ms / 1000}s; last lines of ${n.logFile}:\n${logTail(n)}`);
}

// ---------------------------------------------------------------- starting nodes
async function initDatadir(n) {
  const marker = path.join(n.dir, '.initialized');
  if (fs.existsSync(marker)) return;
  fs.rmSync(n.dataDir, { recursive: true, force: true }); // a half-initialised datadir is useless
  const b = binaries(), user = IS_ROOT ? ['--user=root'] : [];
  const [cmd, args] = b.mysql8
    ? [b.server, ['--no-defaults', '--initialize-insecure', `--datadir=${n.dataDir}`, `--tmpdir=${n.tmpDir}`, ...user]]
    : [b.install, ['--no-defaults', `--datadir=${n.dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-log-file-size=64M', `--tmpdir=${n.tmpDir}`, ...user]];
  try { await run(cmd, args, { timeout: 120_000 }); } catch (e) { fail(`${n.name}: initialising ${n.dataDir} failed:\n${e.stderr || e.message}`); }
  fs.writeFileSync(marker, new Date().toISOString() + '\n');
}

/** Start one node unless it already runs; resolves when it answers. Returns 'already running' | 'started'. */
async function startOne(n, log) {
  for (const d of [n.dataDir, n.tmpDir]) fs.mkdirSync(d, { recursive: true });
  const running = livePid(n);
  if (running) {
    await waitReady(n, running);
    log(`${n.name}: already running (pid ${running})`);
    return 'already running';
  }
  if (fs.existsSync(n.pidFile)) { log(`${n.name}: removing stale pid file`); fs.rmSync(n.pidFile, { force: true }); }
  if (await tcpProbe(n.port)) fail(`${n.name}: port ${n.port} is taken by a process that is not ours; set STACK_PORT_${n.name.toUpperCase().replace(/-/g, '_')}`);
  for (const f of [n.socket, `${n.socket}.lock`]) fs.rmSync(f, { force: true });
  let pid;
  if (n.kind === 'redis') {
    (n.writeConf ?? writeRedisConf)(n);
    pid = spawnDetached(n, binaries().redis, [n.confFile, ...(n.args ?? [])]);
  } else {
    await initDatadir(n);
    writeMyCnf(n);
    pid = spawnDetached(n, binaries().server, [`--defaults-file=${n.confFile}`, ...(IS_ROOT ? ['--user=root'] : [])]);
  }
  joinExistingCgroup(n, pid);
  await waitReady(n, pid);
  log(`${n.name}: started (pid ${pid}, port ${n.port})`);
  return 'started';
}

/**
 * The least-privilege accounts the app uses (libs/core config defaults), on every `up`: CREATE USER IF NOT
 * EXISTS and GRANT are idempotent and only add, so an already-running stack gains them without a restart
 * and without a moment in which a running test's account lacks a privilege. Replicas get them through the
 * binlog. `mallscale%` covers `mallscale` and the test schemas (`mallscale_test`); `%` is the only wildcard
 * in it, so no `_` needs escaping.
 *   app: DML only (GET_LOCK, MASTER_GTID_WAIT, @@gtid reads and session tracking need no privilege);
 *   ddl: migrations, partition maintenance, attribute promotion (DML too: schema_migrations, backfills);
 *   monitor: replication status only, no schema at all.
 */
export const APP_ACCOUNTS = {
  app: { user: 'mallscale_app', password: 'mallscale_app' },
  ddl: { user: 'mallscale_ddl', password: 'mallscale_ddl' },
  monitor: { user: 'mallscale_monitor', password: 'mallscale_monitor' },
};
async function ensureAppAccounts(n) {
  const { app, ddl, monitor } = APP_ACCOUNTS;
  const create = (a) => `CREATE USER IF NOT EXISTS '${a.user}'@'%' IDENTIFIED BY '${a.password}'`;
  await sql(n, [
    create(app), create(ddl), create(monitor),
    `GRANT SELECT, INSERT, UPDATE, DELETE ON \`mallscale%\`.* TO '${app.user}'@'%'`,
    `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`mallscale%\`.* TO '${ddl.user}'@'%'`,
    // MariaDB 10.5+ split REPLICATION CLIENT: SHOW SLAVE STATUS needs SLAVE MONITOR.
    `GRANT ${binaries().mysql8 ? 'REPLICATION CLIENT' : 'SLAVE MONITOR'} ON *.* TO '${monitor.user}'@'%'`,
  ].join(';\n'));
}

/** First start only: the fixture/admin user (and on the primary the replication user). Replicas get them via the binlog. */
async function ensureUsers(n) {
  await ensureAppAccounts(n);
  if ((await sql(n, "SELECT COUNT(*) FROM mysql.user WHERE user='mallscale'")) !== '0') return;
  const stmts = ['%', 'localhost'].flatMap((h) => [
    `CREATE USER 'mallscale'@'${h}' IDENTIFIED BY 'mallscale'`,
    `GRANT ALL PRIVILEGES ON *.* TO 'mallscale'@'${h}' WITH GRANT OPTION`,
    // ALL includes READ ONLY ADMIN on MariaDB, which would let the app write to read_only replicas.
    ...(binaries().mysql8 ? [] : [`REVOKE READ_ONLY ADMIN ON *.* FROM 'mallscale'@'${h}'`]),
  ]);
  if (n.role === 'primary') stmts.push("CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'", "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'");
  await sql(n, stmts.join(';\n'));
}

const toNum = (v) => (/^\d+$/.test(v ?? '') ? Number(v) : null);
async function replicaStatus(n) {
  const out = await sql(n, dialect().status, { vertical: true });
  if (!out) return null;
  const f = Object.fromEntries([...out.matchAll(/^\s*(\w+): ?(.*)$/gm)].map((m) => [m[1], m[2]]));
  return {
    io: f.Slave_IO_Running ?? f.Replica_IO_Running, sql: f.Slave_SQL_Running ?? f.Replica_SQL_Running,
    secondsBehind: toNum(f.Seconds_Behind_Master ?? f.Seconds_Behind_Source), gtidIoPos: f.Gtid_IO_Pos ?? f.Retrieved_Gtid_Set,
    lastIoError: f.Last_IO_Error || '', lastSqlError: f.Last_SQL_Error || '',
    sourcePort: toNum(f.Master_Port ?? f.Source_Port),
  };
}

/** Configure replication if the datadir has none, (re)start stopped threads, wait until caught up. */
async function ensureReplication(n, ms = NODE_TIMEOUT_MS) {
  const d = dialect();
  let st = await replicaStatus(n);
  // Not configured, or following a node that is no longer the primary (it was down during a promote): point it.
  if (!st || st.sourcePort !== primaryNode().port) await pointAtPrimary(n, st);
  else if (st.io === 'No' || st.sql === 'No') await sql(n, d.start);
  const end = Date.now() + ms;
  for (; Date.now() < end; await sleep(150)) {
    st = await replicaStatus(n);
    if (st?.lastSqlError) fail(`${n.name}: replication SQL thread failed: ${st.lastSqlError}`);
    // A rejoining old primary with transactions the new one never got: gtid_strict_mode refuses, say so now.
    if (st?.io === 'No' && /gtid/i.test(st.lastIoError)) fail(`${n.name}: replication IO thread refused: ${st.lastIoError}`);
    if (st?.io === 'Yes' && st?.sql === 'Yes') break;
  }
  if (!(st?.io === 'Yes' && st?.sql === 'Yes')) fail(`${n.name}: replication not running after ${ms / 1000}s (IO=${st?.io} SQL=${st?.sql} ${st?.lastIoError})\n${logTail(n)}`);
  const pos = await sql(primaryNode(), d.pos);
  const secs = Math.max(1, Math.round((end - Date.now()) / 1000));
  if ((await sql(n, d.wait(pos, secs), { timeout: (secs + 5) * 1000 })) !== '0') fail(`${n.name}: did not catch up with the primary (${pos}) in time`);
}

// ---------------------------------------------------------------- CPU caps (cgroup v1 or v2)
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
function joinExistingCgroup(n, pid) {
  const cg = detectCgroup();
  if (cg.mechanism === 'none') return;
  try { fs.writeFileSync(path.join(cg.dir, n.name, 'cgroup.procs'), String(pid)); } catch { /* no cgroup for it */ }
}
/** The process's cap in cores (null = uncapped or unknown), read from the cgroup it is in. */
function readCap(pid) {
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
 * Cap (cpu in cores) or uncap (null/'off') the given nodes; default: all database nodes. Returns what was done:
 * { applied, mechanism, cpu, nodes, periodUs, reason } — applied false (mechanism 'none', reason) when no cgroup
 * cpu controller is writable, so a caller can refuse to call a run "capped".
 */
export async function setCpuCap(cpu, names) { return applyCaps(cpu, names); }
function applyCaps(cpu, names) {
  const cap = parseCpu(cpu);
  const targets = names?.length ? names.map(byName) : [...nodes, ...addedShardsInUse()].filter(isDb);
  const cg = cgroup();
  const result = { applied: false, mechanism: cg.mechanism, cpu: cap, nodes: targets.map((n) => n.name), periodUs: cfsQuota(cap).periodUs, reason: cg.reason };
  if (cg.mechanism === 'none') return result;
  for (const n of targets) writeCap(cg, n, cap);
  // A node this launcher does not run (another STACK_DIR, compose) has no pid to move: its cap is not applied.
  const absent = cap == null ? [] : targets.filter((n) => !livePid(n)).map((n) => n.name);
  if (absent.length) return { ...result, reason: `${absent.join(', ')} not running from ${STACK_DIR} (no pid to move into the cgroup)` };
  return { ...result, applied: true };
}
function applyEnvCaps() {
  for (const [env, pick] of [['STACK_DB_CPU', isDb], ['STACK_REDIS_CPU', (n) => !isDb(n)]]) {
    if (process.env[env]) applyCaps(process.env[env], [...nodes, ...addedShardsInUse()].filter(pick).map((n) => n.name));
  }
}
function removeCgroups() {
  const cg = detectCgroup();
  if (cg.mechanism === 'none') return;
  for (const n of [...nodes, ...addedShards]) try { fs.rmdirSync(path.join(cg.dir, n.name)); } catch { /* absent */ }
  try { fs.rmdirSync(cg.dir); } catch { /* absent or busy */ }
}

// ---------------------------------------------------------------- locking (parallel `up`s from CI jobs/jest)
let lockDepth = 0;
async function withLock(fn) {
  const lock = path.join(STACK_DIR, '.lock');
  if (lockDepth === 0) {
    fs.mkdirSync(STACK_DIR, { recursive: true });
    for (const end = Date.now() + 180_000; ; await sleep(250)) {
      try { fs.writeFileSync(lock, String(process.pid), { flag: 'wx' }); break; } catch (e) {
        if (e.code !== 'EEXIST') throw e;
        const holder = Number(fs.readFileSync(lock, 'utf8')) || 0;
        if (!holder || !isAlive(holder)) { fs.rmSync(lock, { force: true }); continue; }
        if (Date.now() > end) fail(`${lock} held by pid ${holder} for too long`);
      }
    }
  }
  lockDepth++;
  try { return await fn(); } finally { if (--lockDepth === 0) fs.rmSync(lock, { force: true }); }
}

// ---------------------------------------------------------------- edge cache (optional: `up --edge`)
// Varnish (Debian package `varnish`) in front of shop-api on 127.0.0.1:6081 (STACK_PORT_EDGE), backend
// STACK_EDGE_BACKEND (default 127.0.0.1:3000, where `npm start` serves), product reads kept STACK_EDGE_TTL_S (10)
// + STACK_EDGE_GRACE_S (5). VCL: docker/varnish/mallscale.vcl;
// the backend and the purge ACL (loopback only) go into <STACK_DIR>/edge/site.vcl, written here. Not part of
// `nodes`: the default topology, caps and status checks stay the six nodes; `down` stops it too.
// startEdge() also runs private instances (tests, the hot-products `edge` mode) on ports of their own.
const EDGE_VCL_DIR = path.join(REPO, 'docker', 'varnish');
export const edge = {
  name: 'edge', port: Number(process.env.STACK_PORT_EDGE || 6081), dir: path.join(STACK_DIR, 'edge'), backend: process.env.STACK_EDGE_BACKEND || '127.0.0.1:3000',
  ttlS: Number(process.env.STACK_EDGE_TTL_S || 10), graceS: Number(process.env.STACK_EDGE_GRACE_S || 5),
};

function varnishd() {
  let bin = which('varnishd');
  if (!bin && IS_ROOT && which('apt-get')) {
    console.log('stack: varnishd missing; installing the Debian package varnish with apt-get');
    const apt = (...a) => execFileSync('apt-get', a, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    try { apt('install', '-y', 'varnish'); } catch { apt('update'); apt('install', '-y', 'varnish'); }
    bin = which('varnishd');
  }
  return bin ?? fail('missing varnishd. Install the Debian package: sudo apt-get install -y varnish');
}

/** The site include: backend `default` at host:port, the loopback-only `purgers` ACL, and the TTL + grace of a product read. */
export function edgeSiteVcl(backend, ttlS = 10, graceS = 5) {
  const [, host, port] = /^\[?([^\]]+?)\]?:(\d+)$/.exec(backend) ?? fail(`edge backend must be host:port (got '${backend}')`);
  for (const [k, v] of [['ttl', ttlS], ['grace', graceS]]) if (!Number.isInteger(v) || v < 0 || v > 86_400) fail(`edge ${k} must be whole seconds 0..86400 (got ${v})`);
  return `backend default {\n    .host = "${host}";\n    .port = "${port}";\n    .connect_timeout = 2s;\n    .first_byte_timeout = 10s;\n}\n\nacl purgers {\n    "127.0.0.1";\n    "::1";\n}\n\nsub site_ttl {\n    set beresp.ttl = ${ttlS}s;\n    set beresp.grace = ${graceS}s;\n}\n`;
}

function edgePid(dir) {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'varnishd.pid'), 'utf8').trim());
    if (pid && isAlive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(dir, 'work'))) return pid;
  } catch { /* not running */ }
  return null;
}

/** Start varnishd in `dir` on 127.0.0.1:port in front of `backend`; resolves once it accepts connections. */
export async function startEdge({ port, backend, dir, memory = '64m', ttlS = 10, graceS = 5 }) {
  const running = edgePid(dir);
  if (running) return { pid: running, port, dir, url: `http://127.0.0.1:${port}`, stop: () => stopEdge(dir) };
  if (await tcpProbe(port)) fail(`edge: port ${port} is taken by a process that is not ours; set STACK_PORT_EDGE`);
  const bin = varnishd();
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755); // the VCL compiler runs as the unprivileged varnish user and reads site.vcl from here
  fs.writeFileSync(path.join(dir, 'site.vcl'), edgeSiteVcl(backend, ttlS, graceS), { mode: 0o644 });
  const n = { name: 'edge', dir, logFile: path.join(dir, 'varnishd.log'), pidFile: path.join(dir, 'varnishd.pid') };
  // -F: stays in the foreground, so the pid we keep is the manager (SIGTERM stops it and its child).
  const pid = spawnDetached(n, bin, ['-F', '-n', path.join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', '127.0.0.1:0',
    '-f', path.join(EDGE_VCL_DIR, 'mallscale.vcl'), '-p', `vcl_path=${dir}:${EDGE_VCL_DIR}`, '-s', `malloc,${memory}`]);
  for (const end = Date.now() + 30_000; !(await tcpProbe(port)); await sleep(100)) {
    if (!isAlive(pid) || Date.now() > end) fail(`edge did not start on ${port}:\n${logTail(n)}`);
  }
  return { pid, port, dir, url: `http://127.0.0.1:${port}`, stop: () => stopEdge(dir) };
}

export async function stopEdge(dir = edge.dir) {
  const pid = edgePid(dir);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitDead(pid, 15_000))) { process.kill(pid, 'SIGKILL'); await waitDead(pid, 5000); }
  }
  fs.rmSync(path.join(dir, 'varnishd.pid'), { force: true });
}

/** The edge's status row, or null when it is not meant to run (never started, or stopped by stopEdge). */
async function edgeStatus() {
  if (!fs.existsSync(path.join(edge.dir, 'varnishd.pid'))) return null; // never started, or stopped by us
  const pid = edgePid(edge.dir);
  const state = !pid ? 'down' : (await tcpProbe(edge.port)) ? 'up' : 'unresponsive';
  return { name: 'edge', role: 'edge', kind: 'varnish', port: edge.port, pid, state, cap: null, detail: `backend ${edge.backend}` };
}

// ---------------------------------------------------------------- public API
/** Start every node that is not running, set up users and replication, apply caps. Returns status(). */
export async function up(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  binaries();
  const rows = await withLock(async () => {
    await Promise.all(nodes.map((n) => startOne(n, log))); // replicas replay the primary's whole binlog, so order is free
    await Promise.all(nodes.filter((n) => n.role === 'primary' || n.role === 'shard').map(ensureUsers));
    await Promise.all(nodes.filter((n) => n.role === 'replica').map((n) => ensureReplication(n)));
    applyEnvCaps();
    if (opts.edge) await startEdge(edge);
    return status();
  });
  if (!opts.quiet) printTable(rows);
  return rows;
}

/** One row per node: { name, role, kind, port, pid, state: up|down|unresponsive|replication-down, cap, detail, replication? }. */
export async function status() {
  const [rows, edgeRow] = await Promise.all([nodeStatus(), edgeStatus()]);
  return edgeRow ? [...rows, edgeRow] : rows;
}

function nodeStatus() {
  return Promise.all([...nodes, ...addedShardsInUse()].map(async (n) => {
    const pid = livePid(n);
    const row = { name: n.name, role: n.role, kind: n.kind, port: n.port, pid, state: 'down', cap: pid ? readCap(pid) : null, detail: '' };
    if (!pid) { row.detail = fs.existsSync(n.pidFile) ? 'stale pid file' : ''; return row; }
    if (!(await answers(n))) { row.state = 'unresponsive'; return row; }
    row.state = 'up';
    try {
      if (n.kind === 'redis') {
        row.detail = `${await redisRole(n)} maxmemory-policy=${(await redisCmd(n, 'CONFIG', 'GET', 'maxmemory-policy'))[1]}`;
      } else if (n.role === 'replica') {
        const st = (row.replication = await replicaStatus(n));
        if (!st || st.io !== 'Yes' || st.sql !== 'Yes') row.state = 'replication-down';
        row.detail = st ? `IO=${st.io} SQL=${st.sql} behind=${st.secondsBehind ?? '-'}s ${st.lastIoError || st.lastSqlError}`.trim() : 'not configured';
      } else {
        row.detail = `gtid=${(await sql(n, dialect().pos)) || '-'}`;
      }
    } catch (e) { row.detail = e.message.split('\n')[0]; }
    return row;
  }));
}

async function stopOne(n) {
  const pid = livePid(n);
  if (pid) {
    process.kill(pid, 'SIGTERM'); // mariadbd: clean shutdown; redis: no RDB (save ""), AOF fsynced
    if (!(await waitDead(pid, 30_000))) { process.kill(pid, 'SIGKILL'); await waitDead(pid, 5000); }
  }
  fs.rmSync(n.pidFile, { force: true });
}

/** Stop all nodes (SIGTERM, SIGKILL after 30 s) and remove their cgroups. Data is kept. */
export async function down() {
  await withLock(async () => {
    await downSentinel();
    if (fs.existsSync(path.join(STACK_DIR, 'galera'))) await (await import('./galera.mjs')).downGalera();
    await Promise.all([...[...nodes, ...addedShards].map(stopOne), stopEdge()]);
  });
  removeCgroups();
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
  const n = byName(name), pid = livePid(n);
  if (!pid) return null;
  process.kill(pid, 'SIGKILL');
  await waitDead(pid, 10_000);
  return pid;
}

/** Start one node again; a replica resumes from the replication state persisted in its datadir. */
export async function startNode(name) {
  const n = byName(name);
  binaries();
  return withLock(async () => {
    await startOne(n, () => {});
    if (n.role === 'replica') await ensureReplication(n);
    applyEnvCaps();
    return (await status()).find((r) => r.name === name);
  });
}

/** STOP / START the replica's SQL thread: the IO thread keeps fetching, so lag builds up for real. */
export async function stopReplicaSql(name) { await sql(replicaNode(name), dialect().stopSql); }
export async function startReplicaSql(name) { await sql(replicaNode(name), dialect().startSql); }
function replicaNode(name) {
  const n = byName(name);
  return n.role === 'replica' ? n : fail(`${name} is not a replica`);
}

// ---------------------------------------------------------------- promote / failover (catalog: primary + GTID replicas)
// Which catalog node is the primary is remembered in STACK_DIR/catalog-roles.json (default: the node named
// "primary"); node names, ports and datadirs never change, only roles. A node's my.cnf follows its role on
// the next start (read_only=ON on replicas), so kill/start/up/status keep working after a promotion.
//   promote <replica> (planned switchover): wait for the candidate to catch up, make the old primary read_only,
//     wait for its final GTID position on the candidate, promote it (stop + reset replication, read_only off),
//     repoint the other replica and the old primary at it (MASTER_USE_GTID=slave_pos / SOURCE_AUTO_POSITION).
//   failover (unplanned, the primary is dead): let each live replica apply what it had received, promote the
//     one with the most transactions, repoint the rest. The dead primary rejoins as a replica on `start`;
//     what it acknowledged but never shipped is lost (asynchronous replication), and if it had any,
//     gtid_strict_mode makes its rejoin fail loudly instead of diverging silently.
//   STACK_PROMOTE_TIMEOUT_S (default 30): how long a candidate may take to catch up.
const ROLES_FILE = path.join(STACK_DIR, 'catalog-roles.json');
export function catalogRoles() {
  try { return { primary: 'primary', ...JSON.parse(fs.readFileSync(ROLES_FILE, 'utf8')) }; } catch { return { primary: 'primary' }; }
}
function writeRoles(roles) {
  fs.mkdirSync(STACK_DIR, { recursive: true });
  fs.writeFileSync(`${ROLES_FILE}.tmp`, JSON.stringify(roles, null, 2) + '\n');
  fs.renameSync(`${ROLES_FILE}.tmp`, ROLES_FILE);
}
const promoteTimeoutS = () => {
  const v = Number(process.env.STACK_PROMOTE_TIMEOUT_S || 30);
  return Number.isInteger(v) && v >= 1 ? v : fail(`STACK_PROMOTE_TIMEOUT_S must be an integer >= 1, got "${process.env.STACK_PROMOTE_TIMEOUT_S}"`);
};
/** (Re)point a node at the current primary, read_only; `st` is its replication status (null: never a replica). */
async function pointAtPrimary(n, st) {
  const d = dialect();
  if (st) await sql(n, d.stop);
  else if (d.adoptOwnPosition) await sql(n, d.adoptOwnPosition);
  await sql(n, `${d.readOnly(true)}; ${d.changeMaster(primaryNode().port)}; ${d.start}`);
}
async function waitPos(n, pos, secs) {
  return !pos || (await sql(n, dialect().wait(pos, secs), { timeout: (secs + 5) * 1000 })) === '0';
}
/** Repoint every live catalog node but the primary at it; { [name]: 'ok' | error message | 'down' }. */
async function repointCatalog() {
  const out = {};
  for (const n of nodes.filter((x) => x.catalog && x.role === 'replica')) {
    if (!livePid(n) || !(await answers(n))) { out[n.name] = 'down (repointed on its next start)'; continue; }
    try { await ensureReplication(n); out[n.name] = 'ok'; } catch (e) { out[n.name] = e.message.split('\n')[0]; }
  }
  return out;
}
const catalogNode = (name) => { const n = byName(name); return n.catalog ? n : fail(`${name} is not a catalog node`); };

/** Planned switchover to `name`. Returns { primary, previous, gtid, readOnlyMs, totalMs, repointed }. */
export async function promote(name, { timeoutS = promoteTimeoutS() } = {}) {
  binaries();
  return withLock(async () => {
    const d = dialect(), t0 = Date.now();
    const cand = catalogNode(name), old = primaryNode();
    if (cand === old) fail(`${name} is already the primary`);
    if (!livePid(old) || !(await answers(old))) fail(`${old.name} (the primary) does not answer: use "failover"`);
    if (!livePid(cand) || !(await answers(cand))) fail(`${name} does not answer`);
    const st = await replicaStatus(cand);
    if (!st || st.sourcePort !== old.port || st.io !== 'Yes' || st.sql !== 'Yes') fail(`${name} is not replicating from ${old.name} (IO=${st?.io} SQL=${st?.sql}): fix it first`);
    // Catch up while the primary still takes writes, so the read-only window is only the last few transactions.
    if (!(await waitPos(cand, await sql(old, d.pos), timeoutS))) fail(`${name} did not catch up with ${old.name} within ${timeoutS}s`);
    await sql(old, d.readOnly(true));
    const readOnlyAt = Date.now();
    let gtid;
    try {
      gtid = await sql(old, d.pos);
      if (!(await waitPos(cand, gtid, timeoutS))) fail(`${name} did not apply ${old.name}'s last transactions (${gtid}) within ${timeoutS}s`);
      await sql(cand, `${d.stop}; ${d.resetAll}; ${d.readOnly(false)}`);
    } catch (e) {
      await sql(old, d.readOnly(false)).catch(() => undefined); // nothing changed: the old primary writes again
      throw e;
    }
    writeRoles({ primary: cand.name, previous: old.name, how: 'switchover', gtid, at: new Date().toISOString() });
    const readOnlyMs = Date.now() - readOnlyAt;
    const repointed = await repointCatalog();
    return { primary: cand.name, previous: old.name, gtid, readOnlyMs, totalMs: Date.now() - t0, repointed };
  });
}

/** Unplanned: the primary is dead; promote the most advanced live replica. Returns { primary, previous, gtid, positions, totalMs, repointed }. */
export async function failover({ timeoutS = promoteTimeoutS() } = {}) {
  binaries();
  return withLock(async () => {
    const d = dialect(), t0 = Date.now();
    const old = primaryNode();
    if (livePid(old) && (await answers(old))) fail(`${old.name} (the primary) still answers: a planned switchover is "promote <replica>"`);
    const positions = {};
    for (const n of nodes.filter((x) => x.catalog && x.role === 'replica')) {
      if (!livePid(n) || !(await answers(n))) continue;
      // Apply what was received before comparing: the relay log counts, the dead primary cannot resend it.
      const st = await replicaStatus(n);
      await waitPos(n, st?.gtidIoPos, timeoutS);
      positions[n.name] = await sql(n, d.pos);
    }
    const ranked = Object.entries(positions).sort(([, a], [, b]) => d.transactions(b) - d.transactions(a));
    if (!ranked.length) fail('no live replica to promote');
    const [name, gtid] = ranked[0];
    const cand = byName(name);
    await sql(cand, `${d.stop}; ${d.resetAll}; ${d.readOnly(false)}`);
    writeRoles({ primary: cand.name, previous: old.name, how: 'failover', gtid, at: new Date().toISOString() });
    const repointed = await repointCatalog();
    return { primary: cand.name, previous: old.name, gtid, positions, totalMs: Date.now() - t0, repointed };
  });
}

// ---------------------------------------------------------------- Redis Sentinel (optional: up --redis sentinel)
// Each Redis role as primary + replica + 3 sentinels, from the same redis-server binary run with --sentinel
// (what Debian's redis-sentinel package runs). The sentinels monitor the named masters mallscale-cache and
// mallscale-queue with a quorum of 2; down-after and failover-timeout are short for a demo (env below).
// Sentinel and replicaof rewrite their own config files (CONFIG REWRITE: current master, epoch, known
// replicas), so these files are written once and then belong to the servers; `reset` deletes them.
//   STACK_SENTINEL_DOWN_AFTER_MS (default 1000): a primary silent this long is subjectively down.
//   STACK_SENTINEL_FAILOVER_TIMEOUT_MS (default 10000): how long one failover attempt may take.
//   STACK_PORT_REDIS_CACHE_REPLICA / _REDIS_QUEUE_REPLICA / _SENTINEL_1.._3: ports (6390, 6391, 26379-26381).
export const SENTINEL_MASTERS = { cache: 'mallscale-cache', queue: 'mallscale-queue' };
const sentinelEnvMs = (name, dflt) => {
  const v = Number(process.env[name] || dflt);
  return Number.isInteger(v) && v >= 100 ? v : fail(`${name} must be an integer >= 100 (ms), got "${process.env[name]}"`);
};
const envPort = (name, dflt) => Number(process.env[`STACK_PORT_${name.toUpperCase().replace(/-/g, '_')}`] || dflt);

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
  return [
    `port ${n.port}`, 'bind 127.0.0.1', 'daemonize no', `pidfile ${n.pidFile}`, 'logfile ""', `dir ${n.dataDir}`,
    `unixsocket ${n.socket}`, 'unixsocketperm 700', 'save ""',
    ...(queue ? ['maxmemory-policy noeviction', 'appendonly yes', 'appendfsync everysec'] : ['maxmemory 256mb', 'maxmemory-policy allkeys-lru', 'appendonly no']),
    ...(replicaOf ? [`replicaof 127.0.0.1 ${replicaOf}`] : []),
  ];
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

/** ROLE in one word: master (n replicas) | replica of host:port (link state) | sentinel. */
async function redisRole(n) {
  try {
    const r = await redisCmd(n, 'ROLE');
    if (r[0] === 'master') return `role=master replicas=${r[2]?.length ?? 0}`;
    if (r[0] === 'slave') return `role=replica of ${r[1]}:${r[2]} link=${r[3]}`;
    return `role=${r[0]}`;
  } catch (e) { return `role=? (${e.message})`; }
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
      await redisCmd(n, 'SENTINEL', 'SET', g.masterName, 'down-after-milliseconds', String(topo.downAfter), 'failover-timeout', String(topo.failoverTimeout));
    }
    for (const n of sentinels) for (const g of topo.groups) {
      await waitFor(`${n.name} to see the other sentinels and a replica of ${g.masterName}`, async () => {
        const m = toMap(await redisCmd(n, 'SENTINEL', 'MASTER', g.masterName));
        return Number(m['num-other-sentinels']) >= 2 && Number(m['num-slaves']) >= 1;
      });
    }
  });
  return sentinelStatus(opts);
}
const toMap = (arr) => Object.fromEntries(arr.flatMap((v, i) => (i % 2 ? [] : [[v, arr[i + 1]]])));
async function waitFor(what, fn, ms = NODE_TIMEOUT_MS) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) if (await fn().catch(() => false)) return;
  fail(`timed out after ${ms / 1000}s waiting for ${what}`);
}

/** One row per sentinel-block node, like status(): its replication role, or for a sentinel the masters it names. */
export async function sentinelStatus(opts = {}) {
  const topo = sentinelTopology(opts);
  return Promise.all(topo.nodes.map(async (n) => {
    const pid = livePid(n);
    const row = { name: n.name, role: n.role, kind: n.kind, port: n.port, pid, state: pid ? 'up' : 'down', cap: null, detail: '' };
    if (!pid) return row;
    if (!(await answers(n))) return { ...row, state: 'unresponsive' };
    if (n.role !== 'sentinel') return { ...row, detail: await redisRole(n) };
    const masters = await Promise.all(topo.groups.map(async (g) => `${g.masterName}=${(await redisCmd(n, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', g.masterName).catch(() => null))?.join(':') ?? '?'}`));
    return { ...row, detail: masters.join(' ') };
  }));
}
/** The port the sentinels currently name as the master of a group (what clients are sent to). */
export async function sentinelMaster(masterName, opts = {}) {
  for (const n of sentinelTopology(opts).nodes.filter((x) => x.role === 'sentinel')) {
    const r = await redisCmd(n, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName).catch(() => null);
    if (r) return Number(r[1]);
  }
  return null;
}
/** SIGKILL one node of a sentinel group (failure tests and the redis-failover benchmark); returns its pid or null. */
export async function killSentinelNode(name, opts = {}) {
  const n = sentinelTopology(opts).nodes.find((x) => x.name === name) ?? fail(`no sentinel-group node "${name}"`);
  const pid = livePid(n);
  if (!pid) return null;
  process.kill(pid, 'SIGKILL');
  await waitDead(pid, 10_000);
  return pid;
}
/** Stop the sentinels first (so stopping a primary starts no failover), then the data nodes; `purge` deletes the dir. */
export async function downSentinel(opts = {}) {
  const topo = sentinelTopology(opts);
  await Promise.all(topo.nodes.filter((n) => n.role === 'sentinel').map(stopOne));
  await Promise.all(topo.nodes.filter((n) => n.role !== 'sentinel').map(stopOne));
  if (opts.purge) fs.rmSync(topo.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- add-shard (the third order shard, started on demand)
// Not part of `up`: the default topology stays two shards. `add-shard` starts shard-2 like the others (same
// my.cnf, accounts and grants), then (CLI) runs the app's migrate with three DB_SHARD_URLS: schema,
// shard_identity = 2, partitions. Once its datadir exists, status, kill/start, cap and down know it too.
const ADDED_SHARDS = [['shard-2', 'shard', 'mariadb', 3312, 12]];
export const addedShards = ADDED_SHARDS.map(nodeOf);
const addedShardsInUse = () => addedShards.filter((n) => fs.existsSync(path.join(n.dir, '.initialized')));
/** Start shard-2 (idempotent) with the app's accounts; returns its status row. */
export async function addShard(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  const n = addedShards[0];
  binaries();
  return withLock(async () => {
    await startOne(n, log);
    await ensureUsers(n);
    applyEnvCaps();
    return (await status()).find((r) => r.name === n.name);
  });
}

// ---------------------------------------------------------------- CLI
export function printTable(rows) {
  const head = ['node', 'role', 'port', 'pid', 'state', 'cpu cap', 'detail'];
  const body = rows.map((r) => [r.name, r.role, r.port, r.pid ?? '-', r.state, r.cap == null ? '-' : r.cap.toFixed(2), r.detail].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(w[i])).join(' | ').trimEnd();
  console.log([line(head), w.map((x) => '-'.repeat(x)).join('-|-'), ...body.map(line)].join('\n'));
}

/** One line under the table: which cgroup mechanism caps (or would cap) the nodes, or why none can. */
function printCapMechanism({ mechanism, dir, reason }) {
  console.log(mechanism === 'none' ? `cpu caps: unavailable (${reason})` : `cpu caps: cgroup ${mechanism} (${dir})`);
}

async function main([cmd, ...args]) {
  const t0 = Date.now();
  const secs = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const needName = () => args[0] ?? fail(`usage: stack.mjs ${cmd} <node>`);
  switch (cmd) {
    case 'up': {
      const redis = args.includes('--redis') ? args[args.indexOf('--redis') + 1] : 'single';
      if (!['single', 'sentinel'].includes(redis)) fail(`--redis must be single or sentinel (got "${redis}")`);
      await up({ edge: args.includes('--edge') });
      if (redis === 'sentinel') printTable(await upSentinel());
      if (args.includes('--catalog')) return (await import('./galera.mjs')).galeraCli(args[args.indexOf('--catalog') + 1], { printTable, secs });
      console.log(`stack up (${secs()}) in ${STACK_DIR}`);
      return 0;
    }
    case 'status': {
      const rows = await status();
      const ha = fs.existsSync(sentinelTopology().dir) ? await sentinelStatus() : [];
      const galera = fs.existsSync(path.join(STACK_DIR, 'galera')) ? await (await import('./galera.mjs')).galeraStatus() : [];
      printTable([...rows, ...ha, ...galera]);
      printCapMechanism(detectCgroup());
      // The sentinel group counts only while it runs: a group once started and since stopped is not a broken stack.
      return [...rows, ...(ha.some((r) => r.pid) ? ha : []), ...(galera.some((r) => r.pid) ? galera : [])].every((r) => r.state === 'up') ? 0 : 1;
    }
    case 'down': await down(); console.log(`stack down (${secs()})`); return 0;
    case 'reset': await reset(); console.log(`stack reset: ${STACK_DIR} deleted (${secs()})`); return 0;
    case 'kill': if (args[0]?.startsWith('galera-')) { console.log(`${args[0]}: killed pid ${await (await import('./galera.mjs')).killGaleraNode(args[0])}`); return 0; } if (args[0] === 'edge') { await stopEdge(); console.log('edge: stopped'); return 0; } { const pid = await killNode(needName()); console.log(pid ? `${args[0]}: killed pid ${pid}` : `${args[0]}: not running`); return 0; }
    case 'start': if (args[0]?.startsWith('galera-')) { printTable([await (await import('./galera.mjs')).startGaleraNode(args[0])]); return 0; } if (args[0] === 'edge') await startEdge(edge); else await startNode(needName()); printTable(await status()); return 0;
    case 'add-shard': {
      const row = await addShard();
      printTable(await status());
      const url = (p) => `mysql://mallscale_app:mallscale_app@127.0.0.1:${p}/mallscale`;
      const shardUrls = [...nodes.filter((n) => n.role === 'shard'), ...addedShards].map((n) => url(n.port)).join(',');
      // The app's database gets the shard's schema, identity row (2) and partitions, once the catalog has its
      // bucket map (a stack never migrated would get a three-shard default map: migrate with two shards first).
      const mapped = await sql(primaryNode(), 'SELECT COUNT(*) FROM mallscale.shard_buckets').catch(() => '0');
      if (row.state === 'up' && mapped !== '0') {
        const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'run.mjs'), 'tools/migrate.js'], { stdio: 'inherit', cwd: REPO, env: { ...process.env, DB_SHARD_URLS: shardUrls } });
        if (r.status !== 0) return 1;
      } else console.log('the catalog has no bucket map yet: run `npm run migrate` (two shards) first, then add-shard again');
      console.log(`${row.name} ${row.state} on :${row.port}. Give the app three shards, then move buckets:\n  DB_SHARD_URLS=${shardUrls}\n  npm run shards -- rebalance --to-shards 3 --dry-run`);
      return row.state === 'up' ? 0 : 1;
    }
    case 'promote':
    case 'failover': {
      const r = cmd === 'promote' ? await promote(needName()) : await failover();
      console.log(JSON.stringify(r));
      printTable(await status());
      return Object.values(r.repointed).every((v) => v === 'ok' || v.startsWith('down')) ? 0 : 1;
    }
    case 'cap': {
      if (args[0] == null) fail('usage: stack.mjs cap <cpu|off> [node...]');
      const r = await setCpuCap(args[0], args.slice(1));
      printTable(await status());
      printCapMechanism(r);
      return r.applied ? 0 : 1;
    }
    default:
      console.error('usage: node docker/local/stack.mjs up [--redis sentinel] [--edge] [--catalog galera]|down|status|reset|kill <node>|start <node>|cap <cpu|off> [node...]|add-shard|promote <replica>|failover');
      return cmd ? 1 : 0;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => { console.error(`stack: ${err.message}`); process.exit(1); });
}
