// The catalog as a 3-node MariaDB Galera cluster (galera-4, Debian package), the clustering choice beside
// primary + GTID replicas: every node takes writes, each commit is certified by the whole group before it
// returns (virtually synchronous), so a surviving node has every acknowledged write and losing one node
// costs no promotion. The price: every commit is a group round trip, and two nodes writing the same row
// conflict at certification (the loser gets a deadlock error, 1213, the app retries).
//   node docker/local/stack.mjs up --catalog galera   (or upGalera() from tests: a private cluster in its own dir)
// Nodes: galera-1..3 on 127.0.0.1:3320-3322 (STACK_PORT_GALERA_1..3), group communication on port + 1300
// (4620-4622), incremental state transfer (IST) on port + 1310; a state snapshot (SST, mysqldump) arrives on the node's own port.
// Datadirs under STACK_DIR/galera/<node>; the same accounts as the catalog (APP_ACCOUNTS + mallscale + root).
// Start order: a cluster is bootstrapped (--wsrep-new-cluster) only when no node runs, from the node that
// shut down last (grastate.dat safe_to_bootstrap, else the highest seqno); every other node joins and gets
// what it missed by IST from a donor's gcache (by SST when gcache no longer holds it).
// Failure detection is tuned short (STACK_GALERA_SUSPECT_MS, below; Galera's defaults: suspect 5 s, inactive 15 s): a
// SIGKILLed node is evicted fast, and until then the survivors' commits wait for it — the write outage we measure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { APP_ACCOUNTS } from './accounts.mjs';
import { IS_ROOT, REPO, STACK_DIR, run, sleep } from './env.mjs';
import { aptInstall, canApt, which } from './install.mjs';
import { isAlive, livePid, logTail } from './procs.mjs';

const GALERA_LIBS = ['/usr/lib/galera/libgalera_smm.so', '/usr/lib/galera-4/libgalera_smm.so', '/usr/lib64/galera-4/libgalera_smm.so', '/usr/lib64/galera/libgalera_smm.so'];
const PACKAGES = 'galera-4';
export const GALERA_NAMES = ['galera-1', 'galera-2', 'galera-3'];
// The state-snapshot account (loopback only): a joiner's fresh datadir must already have it, so it is made by install-db.
const SST = { user: 'mallscale_sst', password: 'mallscale_sst' };

let bins;
/** mariadbd + client + the galera-4 provider + mysqldump (SST); apt-get installs galera-4 when missing (root), like the stack's own packages. */
function binaries() {
  if (bins) return bins;
  const find = () => ({ server: which('mariadbd'), install: which('mariadb-install-db'), client: which('mariadb'), provider: GALERA_LIBS.find((p) => fs.existsSync(p)) ?? null, dump: which('mariadb-dump') || which('mysqldump') });
  if (!find().provider && canApt()) {
    console.log(`galera: installing ${PACKAGES} with apt-get`);
    aptInstall(PACKAGES.split(' '));
  }
  return (bins = Promise.resolve(check(find())));
}
function check(b) {
  const missing = Object.entries(b).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) throw new Error(`galera: missing ${missing.join(', ')}. Install the Debian packages: sudo apt-get install -y mariadb-server mariadb-client ${PACKAGES}`);
  return b;
}

/** The cluster's nodes (not started). `dir` default STACK_DIR/galera; `basePort` default 3320 (or STACK_PORT_GALERA_n). */
export function galeraTopology({ dir, basePort } = {}) {
  const root = path.resolve(dir ?? path.join(STACK_DIR, 'galera'));
  return GALERA_NAMES.map((name, i) => {
    const port = basePort ? basePort + i : Number(process.env[`STACK_PORT_GALERA_${i + 1}`] || 3320 + i);
    const d = path.join(root, name);
    const n = {
      name, port, dir: d, root, dataDir: path.join(d, 'data'), tmpDir: path.join(d, 'tmp'), socket: path.join(d, 'mysqld.sock'),
      pidFile: path.join(d, 'mariadb.pid'), logFile: path.join(d, 'mariadb.log'), confFile: path.join(d, 'my.cnf'),
      gcomm: port + 1300, ist: port + 1310, serverId: 20 + i,
    };
    Object.defineProperty(n, 'pid', { enumerable: true, get: () => livePid(n) });
    return n;
  });
}

// Failure detection: a member silent for STACK_GALERA_SUSPECT_MS (default 2000) is suspected and evicted (inactive
// after twice that; keepalives every quarter of it, timeouts checked every 200 ms, which costs nothing and takes up
// to a check period off every eviction); until then the survivors' commits wait for it. Shorter evicts a stalled-but-alive node
// (a long GC or CPU-starved box) by mistake: it rejoins by IST, at the cost of a second, smaller pause.
const iso = (ms) => `PT${(ms / 1000).toFixed(3)}S`;
function detectionMs() {
  const suspect = Number(process.env.STACK_GALERA_SUSPECT_MS || 2000);
  if (!Number.isInteger(suspect) || suspect < 500) throw new Error(`STACK_GALERA_SUSPECT_MS must be an integer >= 500 (ms), got "${process.env.STACK_GALERA_SUSPECT_MS}"`);
  return { suspect, keepalive: Math.max(200, Math.round(suspect / 4)) };
}

function writeCnf(n, all, provider) {
  const { suspect, keepalive } = detectionMs();
  const lines = [
    '# generated by docker/local/galera.mjs; rewritten on every start', '[mysqld]',
    `datadir=${n.dataDir}`, `tmpdir=${n.tmpDir}`, `socket=${n.socket}`, `pid-file=${n.pidFile}`, `port=${n.port}`,
    'bind-address=127.0.0.1', 'skip-name-resolve', `server_id=${n.serverId}`,
    'innodb_buffer_pool_size=128M', 'innodb_flush_log_at_trx_commit=2', 'innodb_log_file_size=64M', 'max_connections=500',
    'performance_schema=OFF', 'character-set-server=utf8mb4', 'collation-server=utf8mb4_unicode_ci', 'event_scheduler=OFF',
    // Galera replicates row events and needs interleaved auto-increment locks (no table-level AUTO-INC lock).
    'binlog_format=ROW', 'innodb_autoinc_lock_mode=2',
    // A binlog with cluster-wide GTIDs (one domain, same sequence on every node): @@last_gtid names each write,
    // so the API's X-Consistency-Token keeps its format on Galera (it only has to say "I wrote").
    'log_bin=binlog', 'log_slave_updates=ON', 'sync_binlog=0', 'wsrep_gtid_mode=ON', 'wsrep_gtid_domain_id=1', 'gtid_domain_id=2',
    'session_track_system_variables=autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid',
    'wsrep_on=ON', `wsrep_provider=${provider}`, 'wsrep_cluster_name=mallscale-catalog',
    `wsrep_cluster_address=gcomm://${all.map((x) => `127.0.0.1:${x.gcomm}`).join(',')}`,
    `wsrep_node_name=${n.name}`, 'wsrep_node_address=127.0.0.1', `wsrep_node_incoming_address=127.0.0.1:${n.port}`,
    `wsrep_provider_options="base_port=${n.gcomm};gmcast.listen_addr=tcp://127.0.0.1:${n.gcomm};ist.recv_addr=127.0.0.1:${n.ist};evs.keepalive_period=${iso(keepalive)};evs.suspect_timeout=${iso(suspect)};evs.inactive_timeout=${iso(2 * suspect)};evs.inactive_check_period=PT0.2S;gcache.size=128M"`,
    // SST by mysqldump into the joiner's own port (what the lab uses; rsync SST of the binlog failed on Debian 12's scripts).
    'wsrep_sst_method=mysqldump', `wsrep_sst_auth=${SST.user}:${SST.password}`, `wsrep_sst_receive_address=127.0.0.1:${n.port}`, 'wsrep_slave_threads=2',
  ];
  fs.writeFileSync(n.confFile, lines.join('\n') + '\n');
}

// ---------------------------------------------------------------- processes
function portTaken(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (v) => { s.destroy(); resolve(v); };
    s.setTimeout(500, () => done(false)).on('connect', () => done(true)).on('error', () => done(false));
  });
}

/** SQL as root over the node's unix socket; tab-separated output. */
export async function galeraSql(n, query, { timeout = 15_000 } = {}) {
  const { stdout } = await run((await binaries()).client, ['--no-defaults', '-uroot', `--socket=${n.socket}`, '--batch', '--skip-column-names', '-e', query], { timeout });
  return stdout.trim();
}
/** { wsrep_cluster_size, wsrep_local_state_comment, wsrep_cluster_status, wsrep_ready, wsrep_last_committed, … } or null when it does not answer. */
export async function wsrepStatus(n) {
  try {
    const out = await galeraSql(n, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_local_state_comment','wsrep_cluster_status','wsrep_ready','wsrep_last_committed','wsrep_connected')", { timeout: 5000 });
    return Object.fromEntries(out.split('\n').map((l) => l.split('\t')));
  } catch { return null; }
}
const synced = (st) => st?.wsrep_local_state_comment === 'Synced' && st?.wsrep_cluster_status === 'Primary' && st?.wsrep_ready === 'ON';

/** grastate.dat: { seqno, safe } (what the node knows of its own position after a stop). */
function grastate(n) {
  try {
    const t = fs.readFileSync(path.join(n.dataDir, 'grastate.dat'), 'utf8');
    return { seqno: Number(/^seqno:\s*(-?\d+)/m.exec(t)?.[1] ?? -1), safe: /^safe_to_bootstrap:\s*1/m.test(t) };
  } catch { return { seqno: -1, safe: false }; }
}

async function initDatadir(n, all) {
  const marker = path.join(n.dir, '.initialized');
  if (fs.existsSync(marker)) return;
  fs.rmSync(n.dataDir, { recursive: true, force: true });
  for (const d of [n.dataDir, n.tmpDir]) fs.mkdirSync(d, { recursive: true });
  // Only the bootstrap node's system tables matter: a joiner's datadir is replaced by the SST. A copy is faster than install-db.
  const seed = all.find((x) => x !== n && fs.existsSync(path.join(x.dir, '.template')));
  if (seed) fs.cpSync(path.join(seed.dir, 'template'), n.dataDir, { recursive: true });
  else {
    const b = await binaries();
    const extra = path.join(n.dir, 'sst-user.sql');
    fs.writeFileSync(extra, ['FLUSH PRIVILEGES;', ...['127.0.0.1', 'localhost'].flatMap((h) => [`CREATE USER '${SST.user}'@'${h}' IDENTIFIED BY '${SST.password}';`, `GRANT ALL PRIVILEGES ON *.* TO '${SST.user}'@'${h}' WITH GRANT OPTION;`])].join('\n') + '\n');
    await run(b.install, ['--no-defaults', `--extra-file=${extra}`, `--datadir=${n.dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-log-file-size=64M', `--tmpdir=${n.tmpDir}`, ...(IS_ROOT ? ['--user=root'] : [])], { timeout: 120_000 })
      .catch((e) => { throw new Error(`${n.name}: mariadb-install-db failed: ${e.stderr || e.message}`); });
    fs.cpSync(n.dataDir, path.join(n.dir, 'template'), { recursive: true });
    fs.writeFileSync(path.join(n.dir, '.template'), '');
  }
  fs.writeFileSync(marker, new Date().toISOString() + '\n');
}

/**
 * A node that was killed left seqno -1 in grastate.dat: without its real position it would ask for a full
 * snapshot (SST). `mariadbd --wsrep-recover` reads the last committed position from InnoDB (what mysqld_safe and
 * galera_recovery do); started with it, the node asks for the transactions it missed only (IST).
 */
async function recoverPosition(n, b) {
  const f = path.join(n.dataDir, 'grastate.dat');
  if (!fs.existsSync(f)) return null;
  const t = fs.readFileSync(f, 'utf8');
  if (!/^seqno:\s*-1/m.test(t) || /^uuid:\s*0{8}-/m.test(t)) return null;
  const out = path.join(n.dir, 'wsrep-recover.log');
  fs.rmSync(out, { force: true });
  await run(b.server, [`--defaults-file=${n.confFile}`, ...(IS_ROOT ? ['--user=root'] : []), '--wsrep-recover', `--log-error=${out}`], { timeout: 120_000 }).catch(() => undefined);
  let log = '';
  try { log = fs.readFileSync(out, 'utf8'); } catch { /* nothing recovered */ }
  return /WSREP: Recovered position: ([0-9a-f-]{36}:\d+)/.exec(log)?.[1] ?? null;
}

/** Start one node (bootstrap: a new cluster from its own data); resolves once it is Synced in a Primary component. */
async function startOne(n, all, { bootstrap = false, timeoutMs = 120_000 } = {}) {
  if (livePid(n)) return 'already running';
  if (await portTaken(n.port)) throw new Error(`${n.name}: port ${n.port} is taken by a process that is not ours; set STACK_PORT_${n.name.toUpperCase().replace('-', '_')}`);
  const b = await binaries();
  await initDatadir(n, all);
  for (const d of [n.dataDir, n.tmpDir]) fs.mkdirSync(d, { recursive: true });
  for (const f of [n.socket, `${n.socket}.lock`]) fs.rmSync(f, { force: true });
  writeCnf(n, all, b.provider);
  const start = await recoverPosition(n, b);
  if (bootstrap) { // what `galera_new_cluster` does: this node's data is the cluster's
    const f = path.join(n.dataDir, 'grastate.dat');
    if (fs.existsSync(f)) fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/^safe_to_bootstrap:.*$/m, 'safe_to_bootstrap: 1'));
  }
  fs.appendFileSync(n.logFile, `\n==== galera.mjs: starting ${n.name}${bootstrap ? ' (bootstrap)' : ''} at ${new Date().toISOString()} ====\n`);
  const fd = fs.openSync(n.logFile, 'a');
  const child = spawn(b.server, [`--defaults-file=${n.confFile}`, ...(IS_ROOT ? ['--user=root'] : []), ...(start ? [`--wsrep_start_position=${start}`] : []), ...(bootstrap ? ['--wsrep-new-cluster'] : [])], { detached: true, stdio: ['ignore', fd, fd], cwd: n.dir });
  fs.closeSync(fd);
  child.on('error', () => {});
  child.unref();
  fs.writeFileSync(n.pidFile, `${child.pid}\n`);
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(250)) {
    if (!isAlive(child.pid)) throw new Error(`${n.name} (port ${n.port}) exited during startup; last lines of ${n.logFile}:\n${logTail(n)}`);
    if (synced(await wsrepStatus(n))) return 'started';
  }
  throw new Error(`${n.name} (port ${n.port}) was not Synced within ${timeoutMs / 1000}s; last lines of ${n.logFile}:\n${logTail(n)}`);
}

/** The app's accounts (the catalog's: app / ddl / monitor) and the admin/fixture user; CREATE USER replicates as DDL. */
async function ensureAccounts(n) {
  const { app, ddl, monitor } = APP_ACCOUNTS;
  const create = (a, h = '%') => `CREATE USER IF NOT EXISTS '${a.user}'@'${h}' IDENTIFIED BY '${a.password}'`;
  await galeraSql(n, [
    create(app), create(ddl), create(monitor),
    `GRANT SELECT, INSERT, UPDATE, DELETE ON \`mallscale%\`.* TO '${app.user}'@'%'`,
    `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`mallscale%\`.* TO '${ddl.user}'@'%'`,
    `GRANT SLAVE MONITOR ON *.* TO '${monitor.user}'@'%'`,
    ...['%', 'localhost'].flatMap((h) => [create({ user: 'mallscale', password: 'mallscale' }, h), `GRANT ALL PRIVILEGES ON *.* TO 'mallscale'@'${h}' WITH GRANT OPTION`]),
  ].join(';\n'));
}

async function withLock(root, fn) {
  fs.mkdirSync(root, { recursive: true });
  const lock = path.join(root, '.lock');
  for (const end = Date.now() + 300_000; ; await sleep(250)) {
    try { fs.writeFileSync(lock, String(process.pid), { flag: 'wx' }); break; } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = Number(fs.readFileSync(lock, 'utf8')) || 0;
      if (!holder || !isAlive(holder)) { fs.rmSync(lock, { force: true }); continue; }
      if (Date.now() > end) throw new Error(`${lock} held by pid ${holder} for too long`);
    }
  }
  try { return await fn(); } finally { fs.rmSync(lock, { force: true }); }
}

// ---------------------------------------------------------------- public API
/** Start every node that is not running (idempotent); bootstraps when none runs. Returns galeraStatus(). */
export async function upGalera(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  const all = galeraTopology(opts);
  await binaries();
  await withLock(all[0].root, async () => {
    const live = all.filter((n) => livePid(n));
    if (!live.length) {
      // The node that stopped last holds every commit: safe_to_bootstrap, else the highest seqno, else galera-1.
      const first = all.find((n) => grastate(n).safe) ?? [...all].sort((a, b) => grastate(b).seqno - grastate(a).seqno)[0];
      log(`${first.name}: ${await startOne(first, all, { bootstrap: true })} (bootstrapped the cluster)`);
    }
    for (const n of all) log(`${n.name}: ${await startOne(n, all)} on :${n.port}`); // one joiner at a time: one donor each
    await ensureAccounts(all.find((n) => livePid(n)));
  });
  return galeraStatus(opts);
}

/** One row per node: { name, role: 'galera', kind, port, pid, state, cap: null, detail, wsrep }. */
export async function galeraStatus(opts = {}) {
  return Promise.all(galeraTopology(opts).map(async (n) => {
    const pid = livePid(n);
    const row = { name: n.name, role: 'galera', kind: 'mariadb', port: n.port, pid, state: pid ? 'up' : 'down', cap: null, detail: '' };
    if (!pid) return row;
    const st = await wsrepStatus(n);
    if (!st) return { ...row, state: 'unresponsive' };
    return { ...row, state: synced(st) ? 'up' : 'not-synced', wsrep: st,
      detail: `cluster_size=${st.wsrep_cluster_size} state=${st.wsrep_local_state_comment} component=${st.wsrep_cluster_status} last_committed=${st.wsrep_last_committed}` };
  }));
}

/** SIGKILL one node (failure tests, the benchmark); returns its pid or null. */
export async function killGaleraNode(name, opts = {}) {
  const n = galeraTopology(opts).find((x) => x.name === name) ?? (() => { throw new Error(`no Galera node "${name}" (${GALERA_NAMES.join(', ')})`); })();
  const pid = livePid(n);
  if (!pid) return null;
  process.kill(pid, 'SIGKILL');
  for (const end = Date.now() + 10_000; isAlive(pid) && Date.now() < end;) await sleep(50);
  return pid;
}

/** Start one node again: it rejoins the running cluster (IST from a donor's gcache). */
export async function startGaleraNode(name, opts = {}) {
  const all = galeraTopology(opts);
  const n = all.find((x) => x.name === name) ?? (() => { throw new Error(`no Galera node "${name}"`); })();
  await startOne(n, all, { bootstrap: !all.some((x) => livePid(x)) });
  return (await galeraStatus(opts)).find((r) => r.name === name);
}

/**
 * Resolves once every running node has been Synced in one Primary component of all of them for `quietMs` in a row.
 * Why: a second node lost a few seconds after a rejoin (seen: 2 s after an IST finished) left the two survivors in a
 * non-Primary component — no reads or writes anywhere — until the killed node came back; one failure at a time is
 * what a 3-node cluster survives, and a rejoin is not over when the node reports Synced.
 */
export async function waitSettled(opts = {}, { quietMs = 3000, timeoutMs = 60_000 } = {}) {
  const all = galeraTopology(opts);
  let since = null;
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(200)) {
    const live = all.filter((n) => livePid(n));
    const st = await Promise.all(live.map(wsrepStatus));
    const ok = live.length > 0 && st.every((x) => synced(x) && Number(x.wsrep_cluster_size) === live.length);
    since = ok ? since ?? Date.now() : null;
    if (since && Date.now() - since >= quietMs) return;
  }
  throw new Error(`the Galera cluster in ${all[0].root} did not settle (every node Synced in one Primary component) within ${timeoutMs / 1000}s`);
}

/**
 * How the node got its state on its last start: 'IST' (only the write sets it missed, from a donor's gcache),
 * 'SST' (a full snapshot) or null (it bootstrapped, or the log says neither). MariaDB logs an IST join as a
 * bypass SST that keeps the node's own position ("setting local position to P … current P").
 */
export function lastStateTransfer(name, opts = {}) {
  const n = galeraTopology(opts).find((x) => x.name === name);
  const log = fs.readFileSync(n.logFile, 'utf8');
  const tail = log.slice(log.lastIndexOf('==== galera.mjs: starting'));
  const m = /SST setting local position to ([0-9a-f-]+:\d+)\S* current ([0-9a-f-]+:-?\d+)/.exec(tail);
  if (!m) return null;
  return m[1] === m[2] && /Receiving IST/.test(tail) ? 'IST' : 'SST';
}

/** Clean shutdown of every node (the last one down is the next bootstrap); `purge` deletes the directory. */
export async function downGalera(opts = {}) {
  const all = galeraTopology(opts);
  for (const n of [...all].reverse()) {
    const pid = livePid(n);
    if (!pid) continue;
    process.kill(pid, 'SIGTERM');
    for (const end = Date.now() + 60_000; isAlive(pid) && Date.now() < end;) await sleep(100);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(n.pidFile, { force: true });
  }
  if (opts.purge) fs.rmSync(all[0].root, { recursive: true, force: true });
}

/** `stack.mjs up --catalog galera`: the cluster, then the catalog migrations on it (the app's mallscale database). */
export async function galeraCli(mode, { printTable, secs }) {
  if (mode === 'replicated') return 0;
  if (mode !== 'galera') throw new Error(`--catalog must be replicated or galera (got "${mode}")`);
  printTable(await upGalera());
  const r = spawn(process.execPath, [path.join(REPO, 'scripts', 'run.mjs'), 'tools/migrate.js'], { stdio: 'inherit', cwd: REPO, env: { ...process.env, DB_CATALOG_MODE: 'galera' } });
  const code = await new Promise((resolve) => r.on('exit', (c) => resolve(c ?? 1)));
  console.log(`Galera catalog up (${secs()}): start the API on it with DB_CATALOG_MODE=galera (DB_GALERA_URLS defaults to 127.0.0.1:3320-3322)`);
  return code;
}
