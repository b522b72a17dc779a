// The lab's own mariadbd instances: private ports and datadirs under var/lab (never the main stack),
// started as children of the lab process and killed with it (also on failure or Ctrl-C).
// Every datadir is a copy of one template made once with mariadb-install-db, so all nodes start
// with identical system tables and users; replication and Galera then only have to carry the lab's
// own schema. Installs mariadb-server / galera-4 / rsync with apt-get when missing (root only),
// the way docker/local/stack.mjs does for the native stack.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LAB_DIR = path.resolve(process.env.LAB_DIR || path.join(REPO, 'var', 'lab'));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const IS_ROOT = process.getuid?.() === 0;
const PACKAGES = 'mariadb-server mariadb-client galera-4 rsync';
const GALERA_PATHS = ['/usr/lib/galera/libgalera_smm.so', '/usr/lib/galera-4/libgalera_smm.so', '/usr/lib64/galera-4/libgalera_smm.so', '/usr/lib64/galera/libgalera_smm.so'];
export const USER = { user: 'lab', password: 'lab' };

function which(name) {
  for (const d of [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

let bins;
function findBinaries() {
  const b = {
    server: which('mariadbd'),
    install: which('mariadb-install-db') || which('mysql_install_db'),
    galera: GALERA_PATHS.find((p) => fs.existsSync(p)) ?? null,
    rsync: which('rsync'),
  };
  return { b, missing: Object.entries(b).filter(([, v]) => !v).map(([k]) => k) };
}

/** mariadbd, mariadb-install-db and the Galera provider; apt-get installs them when missing (as root). */
export function binaries({ needGalera = true } = {}) {
  if (bins) return bins;
  let { b, missing } = findBinaries();
  if (!needGalera) missing = missing.filter((m) => m !== 'galera' && m !== 'rsync');
  if (missing.length && IS_ROOT && which('apt-get')) {
    console.log(`lab: missing ${missing.join(', ')}; installing ${PACKAGES} with apt-get`);
    const apt = (...a) => execFileSync('apt-get', a, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    try { apt('install', '-y', ...PACKAGES.split(' ')); } catch { apt('update'); apt('install', '-y', ...PACKAGES.split(' ')); }
    ({ b, missing } = findBinaries());
  }
  if (missing.length && (needGalera || missing.some((m) => m === 'server' || m === 'install'))) {
    throw new Error(`lab: missing ${missing.join(', ')}. Install the Debian packages: sudo apt-get install -y ${PACKAGES}`);
  }
  const version = execFileSync(b.server, ['--version']).toString();
  if (!/mariadb/i.test(version)) throw new Error(`lab: needs MariaDB (found ${version.trim()}); Galera here is MariaDB's galera-4`);
  return (bins = b);
}

// ---------------------------------------------------------------- leftovers of a killed run
const PIDS = () => path.join(LAB_DIR, 'pids');
function remember(pid) { fs.appendFileSync(PIDS(), `${pid}\n`); }
/** Kill mariadbd processes a previous (SIGKILLed) lab run left behind: only ours (cmdline names LAB_DIR). */
export function killLeftovers() {
  let pids = [];
  try { pids = fs.readFileSync(PIDS(), 'utf8').split('\n').map(Number).filter(Boolean); } catch { return; }
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(LAB_DIR)) process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }
  fs.rmSync(PIDS(), { force: true });
}

// ---------------------------------------------------------------- template datadir
/** One initialised datadir with the lab's users; every node starts from a copy of it. */
export function ensureTemplate() {
  const dir = path.join(LAB_DIR, 'template');
  const marker = path.join(dir, '.initialized');
  if (fs.existsSync(marker)) return path.join(dir, 'data');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const extra = path.join(dir, 'users.sql');
  fs.writeFileSync(extra, [
    'FLUSH PRIVILEGES;', // bootstrap runs with grant tables off; this loads them so CREATE USER works
    "CREATE USER 'lab'@'%' IDENTIFIED BY 'lab';", "GRANT ALL PRIVILEGES ON *.* TO 'lab'@'%' WITH GRANT OPTION;",
    "CREATE USER 'lab'@'localhost' IDENTIFIED BY 'lab';", "GRANT ALL PRIVILEGES ON *.* TO 'lab'@'localhost' WITH GRANT OPTION;",
    "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl';", "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';",
  ].join('\n') + '\n');
  const b = binaries({ needGalera: false });
  try {
    execFileSync(b.install, ['--no-defaults', `--datadir=${path.join(dir, 'data')}`, '--auth-root-authentication-method=normal', '--skip-test-db',
    '--innodb-log-file-size=48M', `--tmpdir=${path.join(dir, 'tmp')}`, `--extra-file=${extra}`, ...(IS_ROOT ? ['--user=root'] : [])], { stdio: 'pipe', timeout: 120_000 });
  } catch (e) {
    throw new Error(`lab: mariadb-install-db failed: ${e.stderr?.toString() || e.message}`);
  }
  fs.writeFileSync(marker, new Date().toISOString() + '\n');
  return path.join(dir, 'data');
}

// ---------------------------------------------------------------- nodes
export function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false)).once('listening', () => s.close(() => resolve(true)));
    s.listen(port, '127.0.0.1');
  });
}

export class LabNode {
  /**
   * `netns`: run in a network namespace of its own with these bridges (see galera-netns.mjs); the
   * node is then reached over its unix socket only.
   * @param {{ name: string, region: string, port: number, serverId: number, cnf?: string[], netns?: { bridges: object[] } }} o
   */
  constructor({ name, region, port, serverId, cnf = [], netns = null }) {
    Object.assign(this, { name, region, port, serverId, cnf, netns });
    this.dir = path.join(LAB_DIR, name);
    this.socket = path.join(this.dir, 'mysqld.sock');
    this.dataDir = path.join(this.dir, 'data');
    this.logFile = path.join(this.dir, 'mariadbd.log');
    this.child = null;
  }

  /** Fresh datadir copied from the template (or from another node's datadir). */
  initFrom(srcDataDir) {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
    fs.cpSync(srcDataDir, this.dataDir, { recursive: true });
    for (const f of ['gvwstate.dat', 'galera.cache', 'mariadbd.pid']) fs.rmSync(path.join(this.dataDir, f), { force: true });
  }

  writeCnf() {
    const lines = ['# generated by load-tests/lab/lab-node.mjs', '[mysqld]',
      `datadir=${this.dataDir}`, `tmpdir=${path.join(this.dir, 'tmp')}`, `socket=${this.socket}`,
      `pid-file=${path.join(this.dir, 'mariadbd.pid')}`, `port=${this.port}`, 'bind-address=127.0.0.1', 'skip-name-resolve',
      `server_id=${this.serverId}`, 'innodb_buffer_pool_size=64M', 'innodb_log_file_size=48M', 'innodb_flush_log_at_trx_commit=2',
      'sync_binlog=0', 'max_connections=200', 'performance_schema=OFF', 'character-set-server=utf8mb4',
      `log-error=${this.logFile}`, ...this.cnf];
    fs.writeFileSync(path.join(this.dir, 'my.cnf'), lines.join('\n') + '\n');
  }

  /** Start mariadbd; resolves once the lab user can run a query over TCP. */
  async start(extraArgs = [], { timeoutMs = 90_000 } = {}) {
    if (!this.netns && !(await portFree(this.port))) throw new Error(`${this.name}: port ${this.port} is taken; pass --port-base to use other ports`);
    this.writeCnf();
    const b = binaries();
    const server = [b.server, `--defaults-file=${path.join(this.dir, 'my.cnf')}`, ...(IS_ROOT ? ['--user=root'] : []), ...extraArgs];
    const [cmd, ...args] = this.netns
      ? ['unshare', '--net', '--', process.execPath, path.join(path.dirname(fileURLToPath(import.meta.url)), 'galera-netns.mjs'),
        JSON.stringify({ bridges: this.netns.bridges, server, pidsFile: PIDS() })]
      : server;
    this.child = spawn(cmd, args, { stdio: 'ignore', cwd: this.dir });
    this.child.on('error', () => {});
    const child = this.child;
    child.exited = new Promise((r) => child.once('exit', r));
    remember(child.pid);
    for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(200)) {
      if (child.exitCode != null) throw new Error(`${this.name} exited during startup; last lines of ${this.logFile}:\n${this.logTail()}`);
      try { const c = await this.connect({ connectTimeout: 2000 }); await c.query("SHOW GLOBAL STATUS LIKE 'Uptime'") /* answers on a non-primary Galera node too */; await c.end(); return; } catch { /* not yet */ }
    }
    throw new Error(`${this.name} did not answer within ${timeoutMs / 1000}s; last lines of ${this.logFile}:\n${this.logTail()}`);
  }

  /** Clean shutdown (SIGTERM), SIGKILL after `ms`. */
  async stop(ms = 30_000) {
    const c = this.child;
    if (!c || c.exitCode != null) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), ms);
    await c.exited;
    clearTimeout(t);
  }

  /** SIGKILL (cleanup): the server itself too, which in a netns is a grandchild. */
  kill() {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, 'mariadbd.pid'), 'utf8'));
      if (pid && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(LAB_DIR)) process.kill(pid, 'SIGKILL');
    } catch { /* not running */ }
    if (this.child && this.child.exitCode == null) this.child.kill('SIGKILL');
  }

  /** A connection from this node's own region: no WAN in between (TCP, or the unix socket in a netns). */
  connect(opts = {}) {
    return mysql.createConnection({ ...(this.netns ? { socketPath: this.socket } : { host: '127.0.0.1', port: this.port }), ...USER, ...opts });
  }

  async sql(query, params) {
    const c = await this.connect();
    try { const [rows] = await c.query(query, params); return rows; } finally { await c.end(); }
  }

  logTail(n = 20) {
    try { return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-n).join('\n'); } catch { return '(no log)'; }
  }
}
