// Multi-region lab (seed Q3.a: "one DB per region: replication or clustering?"), answered with numbers.
// Three simulated regions A/B/C on one machine; every region-to-region byte crosses a DelayProxy link
// (one-way delay, default 40 ms). Three setups, each measured the same way from in-process load
// generators labelled with their region:
//   replication  one primary in A, async GTID replicas in B and C (writes from B/C cross the WAN)
//   galera       3-node Galera multi-primary, one node per region (each in its own network namespace)
//   geo          geo-sharding: each user's rows live in their home region's database
// Phases: writes (p50/p99 per region, plus read staleness probes A -> B/C), a hot row updated from every
// region (commit latency and abort rate), then region C cut off (who can still write, who reads stale).
//
//   npm run lab -- multi-region [--delay 40] [--duration 8] [--cut 8] [--concurrency 4]
//                               [--setups replication,galera,geo] [--remote-share 0.2] [--port-base 3460]
//   --delays 10,40,80  a curve: every setup at each one-way delay, one file (default
//                      load-tests/results/multi-region-delays.json, `delays.<ms>.setups`), ~2 min per delay and setup
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import mysql from 'mysql2/promise';
import { mariadb as mariadbSql } from '#dialect-sql';
import { LabNode, LAB_DIR, REPO, USER, binaries, ensureTemplate, killLeftovers, sleep } from './lab-node.mjs';
import { WanHost } from './wan-worker.mjs';

const REGIONS = ['A', 'B', 'C'];
const ri = (r) => REGIONS.indexOf(r);

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = { delay: 40, delays: '', duration: 8, cut: 8, concurrency: 4, setups: 'replication,galera,geo', remoteShare: 0.2, portBase: 3460, out: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === 'multi-region') continue;
    const m = a.match(/^--([\w-]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unknown argument "${a}" (see the header of load-tests/lab/multi-region.mjs)`);
    const key = m[1].replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option --${m[1]}`);
    const v = m[2] ?? argv[++i];
    o[key] = typeof o[key] === 'number' ? Number(String(v).replace(/(ms|s)$/, '')) : v;
    if (typeof o[key] === 'number' && !(o[key] >= 0)) throw new Error(`--${m[1]} must be a non-negative number`);
  }
  o.delays = o.delays ? String(o.delays).split(',').map((d) => Number(d.trim().replace(/ms$/, ''))) : null;
  if (o.delays?.some((d) => !(d >= 0))) throw new Error('--delays takes non-negative one-way delays in ms, e.g. 10,40,80');
  o.out ||= o.delays ? 'load-tests/results/multi-region-delays.json' : 'load-tests/results/multi-region.json';
  o.setups = o.setups.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of o.setups) if (!SETUPS[s]) throw new Error(`unknown setup "${s}" (one of ${Object.keys(SETUPS).join(', ')})`);
  return o;
}

// ---------------------------------------------------------------- helpers
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 10) / 10;
};
const summary = (xs) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: xs.length ? Math.round(Math.max(...xs)) : null });

const SCHEMA = [
  'CREATE DATABASE IF NOT EXISTS lab',
  'CREATE TABLE lab.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, home CHAR(1) NOT NULL, region CHAR(1) NOT NULL, amount INT NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))',
  'CREATE TABLE lab.hot (id INT PRIMARY KEY, v BIGINT NOT NULL)',
  'INSERT INTO lab.hot VALUES (1, 0)',
  'CREATE TABLE lab.probe (id BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))',
];

async function connectTo(target, opts = {}) {
  return mysql.createConnection({ ...target, ...USER, connectTimeout: 5000, ...opts });
}

async function waitFor(what, fn, ms = 60_000) {
  for (const end = Date.now() + ms; ; await sleep(200)) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

// ---------------------------------------------------------------- setups
// Each setup: start(), target(region, role, home) -> mysql2 connection options, stop().
// role: 'write' | 'read' | 'hot'. A target in another region is the WAN link's local port.

async function killAll(nodes = []) {
  for (const n of nodes) n.kill();
  await Promise.all(nodes.map((n) => n.child?.exited));
}

function localTarget(node) { return node.netns ? { socketPath: node.socket } : { host: '127.0.0.1', port: node.port }; }

class ReplicationSetup {
  name = 'replication';
  describe = 'single primary in A, async GTID replicas in B and C';
  constructor(o, wan) { this.o = o; this.wan = wan; }
  async start() {
    const { portBase: base } = this.o;
    for (const from of ['B', 'C']) await this.wan.add({ from, to: 'A', service: 'mysql', listenPort: base + 20 + ri(from), targetPort: base });
    this.nodes = REGIONS.map((r) => new LabNode({ name: `replication-${r}`, region: r, port: base + ri(r), serverId: 1 + ri(r), cnf: [
      'log_bin=binlog', 'binlog_format=ROW', 'log_slave_updates=ON', 'gtid_strict_mode=ON', 'slave_net_timeout=5',
      ...(r === 'A' ? [] : ['read_only=ON', 'relay_log=relay-bin']),
    ] }));
    const tpl = ensureTemplate();
    for (const n of this.nodes) n.initFrom(tpl);
    await Promise.all(this.nodes.map((n) => n.start()));
    const [A, ...replicas] = this.nodes;
    for (const q of SCHEMA) await A.sql(q);
    for (const n of replicas) {
      // The lab runs MariaDB only (Galera is MariaDB's), so its statements are the mariadb column of the dialect.
      await n.sql(mariadbSql.changeSource({ host: '127.0.0.1', port: this.wan.endpoint(n.region, 'A', 'mysql'), user: 'repl', password: 'repl', gtid: true, connectRetryS: 1, heartbeatS: 1 }));
      await n.sql(mariadbSql.startReplica());
    }
    await Promise.all(replicas.map((n) => waitFor(`${n.name} to replicate the schema`, async () => (await n.sql('SELECT COUNT(*) AS c FROM lab.hot'))[0].c === 1)));
  }
  target(region, role) {
    if (role === 'read' || region === 'A') return localTarget(this.nodes[ri(region)]);
    return { host: '127.0.0.1', port: this.wan.endpoint(region, 'A', 'mysql') }; // writes go to the primary in A
  }
  stop() { return killAll(this.nodes); }
}

class GaleraSetup {
  name = 'galera';
  describe = '3-node Galera (galera-4) multi-primary, one node per region';
  constructor(o, wan) { this.o = o; this.wan = wan; }
  async start() {
    const { portBase: base } = this.o;
    const b = binaries();
    const S = path.join(LAB_DIR, 's');
    fs.mkdirSync(S, { recursive: true });
    const G = (r) => base + 10 + ri(r), I = (r) => base + 13 + ri(r), P = (r) => base + ri(r);
    const others = (r) => REGIONS.filter((x) => x !== r);
    const dataDir = (r) => path.join(LAB_DIR, `galera-${r}`);
    let k = 0;
    for (const f of REGIONS) for (const t of others(f)) {
      await this.wan.add({ from: f, to: t, service: 'mysql', listenPort: base + 20 + k++, targetPath: path.join(dataDir(t), 'mysqld.sock') });
      // gcomm = group communication, ist = incremental state transfer, sql = the donor's mysqldump SST into the joiner
      for (const svc of ['gcomm', 'ist', 'sql']) await this.wan.add({ from: f, to: t, service: svc, listenPath: `${S}/${f}-${t}.${svc}`, targetPath: `${S}/${t}.${svc}` });
    }
    this.nodes = REGIONS.map((r) => new LabNode({
      name: `galera-${r}`, region: r, port: P(r), serverId: 100 + ri(r),
      netns: { bridges: [
        ...others(r).flatMap((x) => [
          { listenPort: G(x), targetPath: `${S}/${r}-${x}.gcomm` }, { listenPort: I(x), targetPath: `${S}/${r}-${x}.ist` }, { listenPort: P(x), targetPath: `${S}/${r}-${x}.sql` }]),
        { listenPath: `${S}/${r}.gcomm`, targetPort: G(r) }, { listenPath: `${S}/${r}.ist`, targetPort: I(r) }, { listenPath: `${S}/${r}.sql`, targetPort: P(r) },
      ] },
      cnf: [
        'binlog_format=ROW', 'innodb_autoinc_lock_mode=2', 'wsrep_on=ON', `wsrep_provider=${b.galera}`, 'wsrep_cluster_name=mallscale-lab',
        `wsrep_cluster_address=gcomm://${others(r).map((x) => `127.0.0.1:${G(x)}`).join(',')}`,
        `wsrep_node_name=${r}`, 'wsrep_node_address=127.0.0.1', `wsrep_node_incoming_address=127.0.0.1:${P(r)}`,
        // Short failure detection so the cut-off phase fits in seconds (defaults: suspect 5 s, inactive 15 s).
        `wsrep_provider_options="base_port=${G(r)};gmcast.listen_addr=tcp://127.0.0.1:${G(r)};ist.recv_addr=127.0.0.1:${I(r)};evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.inactive_check_period=PT0.5S;gcache.size=64M"`,
        'wsrep_sst_method=mysqldump', 'wsrep_sst_auth=lab:lab', `wsrep_sst_receive_address=127.0.0.1:${P(r)}`, 'wsrep_slave_threads=2',
      ],
    }));
    const tpl = ensureTemplate();
    for (const n of this.nodes) n.initFrom(tpl);
    // Joiners get their state by SST (mysqldump, ~1 MB); form the cluster on a 0 ms WAN, then add the delay.
    await this.wan.setDelay(0);
    const [A, B, C] = this.nodes;
    await A.start(['--wsrep-new-cluster']);
    await B.start();
    await C.start();
    await Promise.all(this.nodes.map((n) => this.waitSynced(n)));
    for (const q of SCHEMA) await A.sql(q);
    await Promise.all(this.nodes.map((n) => waitFor(`${n.name} to have the schema`, async () => (await n.sql('SELECT COUNT(*) AS c FROM lab.hot'))[0].c === 1)));
    await this.wan.setDelay(this.o.delay);
  }
  waitSynced(n, ms = 120_000) {
    return waitFor(`${n.name} to be Synced`, async () => (await n.sql("SHOW STATUS LIKE 'wsrep_local_state_comment'"))[0].Value === 'Synced', ms);
  }
  target(region) { return localTarget(this.nodes[ri(region)]); }
  stop() { return killAll(this.nodes); }
}

class GeoShardingSetup {
  name = 'geo';
  describe = 'geo-sharding: a user\'s rows live in their home region';
  constructor(o, wan) { this.o = o; this.wan = wan; }
  async start() {
    const { portBase: base } = this.o;
    let k = 0;
    for (const f of REGIONS) for (const t of REGIONS) if (f !== t) await this.wan.add({ from: f, to: t, service: 'mysql', listenPort: base + 20 + k++, targetPort: base + ri(t) });
    this.nodes = REGIONS.map((r) => new LabNode({ name: `geo-${r}`, region: r, port: base + ri(r), serverId: 200 + ri(r) }));
    const tpl = ensureTemplate();
    for (const n of this.nodes) n.initFrom(tpl);
    await Promise.all(this.nodes.map((n) => n.start()));
    for (const n of this.nodes) for (const q of SCHEMA) await n.sql(q);
  }
  /** The shard of the user's home region; the hot row (one global product) lives in A. */
  target(region, role, home = region) {
    const owner = role === 'hot' ? 'A' : home;
    return owner === region ? localTarget(this.nodes[ri(region)]) : { host: '127.0.0.1', port: this.wan.endpoint(region, owner, 'mysql') };
  }
  stop() { return killAll(this.nodes); }
}

const SETUPS = { replication: ReplicationSetup, galera: GaleraSetup, geo: GeoShardingSetup };

// ---------------------------------------------------------------- phases
/** Closed-loop writers per region; for geo a share of the users are travellers homed elsewhere. */
async function writePhase(setup, o) {
  const until = Date.now() + o.duration * 1000;
  const res = Object.fromEntries(REGIONS.map((r) => [r, { lat: [], home: [], away: [], errors: 0 }]));
  let uid = 0;
  const worker = async (region) => {
    const conns = {};
    const conn = async (home) => (conns[home] ??= await connectTo(setup.target(region, 'write', home)));
    try {
      while (Date.now() < until) {
        const away = setup.name === 'geo' && Math.random() < o.remoteShare;
        const home = away ? REGIONS.filter((x) => x !== region)[Math.floor(Math.random() * 2)] : region;
        const c = await conn(home);
        const t = performance.now();
        try {
          await c.query('INSERT INTO lab.orders (user_id, home, region, amount) VALUES (?, ?, ?, ?)', [++uid, home, region, 100]);
          const ms = performance.now() - t;
          res[region].lat.push(ms);
          (away ? res[region].away : res[region].home).push(ms);
        } catch { res[region].errors++; }
      }
    } finally { for (const c of Object.values(conns)) await c.end().catch(() => {}); }
  };
  const probes = stalenessProbes(setup, until);
  await Promise.all(REGIONS.flatMap((r) => Array.from({ length: o.concurrency }, () => worker(r))));
  const stale = await probes;
  return Object.fromEntries(REGIONS.map((r) => [r, {
    write: summary(res[r].lat), writesPerSec: Math.round(res[r].lat.length / o.duration), errors: res[r].errors,
    ...(setup.name === 'geo' ? { writeHomeUsers: summary(res[r].home), writeTravellers: summary(res[r].away) } : {}),
    staleness: stale[r],
  }]));
}

/**
 * Staleness: a probe row is written in A; from the moment A acknowledges the commit, each other
 * region polls its local read endpoint until it sees the row. Geo-sharding keeps one copy, so a read
 * is never stale; it is local or it crosses the WAN.
 */
async function stalenessProbes(setup, until) {
  const out = Object.fromEntries(REGIONS.map((r) => [r, null]));
  if (setup.name === 'geo') return out;
  const writer = await connectTo(setup.target('A', 'write'));
  const readers = {};
  for (const r of ['B', 'C']) readers[r] = await connectTo(setup.target(r, 'read'));
  const samples = { B: [], C: [] };
  let id = Date.now() * 1000;
  try {
    while (Date.now() < until - 500) {
      const pid = ++id;
      await writer.query('INSERT INTO lab.probe (id) VALUES (?)', [pid]);
      const acked = performance.now();
      await Promise.all(['B', 'C'].map(async (r) => {
        for (const end = acked + 5000; performance.now() < end;) {
          const [rows] = await readers[r].query('SELECT 1 FROM lab.probe WHERE id = ?', [pid]);
          if (rows.length) { samples[r].push(performance.now() - acked); return; }
          await sleep(1);
        }
        samples[r].push(5000);
      }));
      await sleep(150);
    }
  } finally {
    await writer.end().catch(() => {});
    for (const c of Object.values(readers)) await c.end().catch(() => {});
  }
  out.A = { n: 0, p50: 0, p99: 0, max: 0 };
  for (const r of ['B', 'C']) out[r] = summary(samples[r]);
  return out;
}

/** Every region increments the same row in explicit transactions (not retried by Galera). */
async function hotRowPhase(setup, o) {
  const until = Date.now() + (o.duration / 2) * 1000;
  const res = Object.fromEntries(REGIONS.map((r) => [r, { lat: [], commits: 0, aborts: 0, errors: 0 }]));
  const worker = async (region) => {
    const c = await connectTo(setup.target(region, 'hot'));
    try {
      while (Date.now() < until) {
        const t = performance.now();
        try {
          await c.query('BEGIN');
          await c.query('UPDATE lab.hot SET v = v + 1 WHERE id = 1');
          await c.query('COMMIT');
          res[region].commits++;
          res[region].lat.push(performance.now() - t);
        } catch (e) {
          if (e.errno === 1213) res[region].aborts++; else res[region].errors++;
          await c.query('ROLLBACK').catch(() => {});
        }
      }
    } finally { await c.end().catch(() => {}); }
  };
  await Promise.all(REGIONS.flatMap((r) => Array.from({ length: o.concurrency }, () => worker(r))));
  const commits = REGIONS.reduce((s, r) => s + res[r].commits, 0);
  // Lost-update check: the row must equal the number of acknowledged commits (read where it lives).
  await sleep(500);
  const c = await connectTo(setup.target('A', 'hot'));
  const [[row]] = await c.query('SELECT v FROM lab.hot WHERE id = 1');
  await c.end();
  return {
    perRegion: Object.fromEntries(REGIONS.map((r) => [r, {
      commit: summary(res[r].lat), commits: res[r].commits, aborts: res[r].aborts, errors: res[r].errors,
      abortRate: res[r].commits + res[r].aborts ? Math.round((1000 * res[r].aborts) / (res[r].commits + res[r].aborts)) / 1000 : 0,
    }])),
    commits, finalValue: Number(row.v), lostUpdates: commits - Number(row.v),
  };
}

/**
 * Cut region C off (all its WAN links stop forwarding; connections hang as with dropped packets).
 * Each region keeps trying single writes with a timeout; C also tries a local read. Then heal and time
 * how long until a row written in A during the cut is visible in C.
 */
async function cutPhase(setup, o) {
  const ms = o.cut * 1000;
  const attemptTimeout = 4000;
  await setup.wan.isolate('C');
  const cutAt = Date.now();
  const marker = cutAt * 1000 + 7;
  const res = Object.fromEntries(REGIONS.map((r) => [r, { ok: 0, failed: 0, errors: {}, lat: [], firstOkAfterMs: null, read: null }]));
  const attempt = async (region, fn) => {
    const c = await connectTo(setup.target(region, 'write', region), { connectTimeout: attemptTimeout });
    try { return await fn(c); } finally { c.destroy(); }
  };
  const worker = async (region) => {
    let wroteMarker = false;
    while (Date.now() - cutAt < ms) {
      const t = performance.now();
      try {
        await attempt(region, async (c) => {
          await c.query({ sql: 'INSERT INTO lab.orders (user_id, home, region, amount) VALUES (0, ?, ?, 1)', values: [region, region], timeout: attemptTimeout });
          if (region === 'A' && !wroteMarker) { await c.query({ sql: 'INSERT INTO lab.probe (id) VALUES (?)', values: [marker], timeout: attemptTimeout }); wroteMarker = true; }
        });
        res[region].ok++;
        res[region].lat.push(performance.now() - t);
        res[region].firstOkAfterMs ??= Date.now() - cutAt;
      } catch (e) {
        res[region].failed++;
        const code = e.errno ? `${e.errno}` : e.code ?? 'timeout';
        res[region].errors[code] = (res[region].errors[code] ?? 0) + 1;
        await sleep(200);
      }
    }
  };
  const readInC = async () => {
    await sleep(Math.max(ms - 2500, ms / 2)); // late in the cut: after Galera's failure detection
    try {
      const c = await connectTo(setup.target('C', 'read', 'C'), { connectTimeout: attemptTimeout });
      try {
        const [[r]] = await c.query({ sql: 'SELECT COUNT(*) AS n FROM lab.probe WHERE id = ?', values: [marker], timeout: attemptTimeout });
        res.C.read = r.n ? 'fresh' : 'ok (stale: misses the write made in A during the cut)';
      } finally { c.destroy(); }
    } catch (e) { res.C.read = `refused (${e.errno ?? e.code ?? 'timeout'}: ${String(e.message).slice(0, 60)})`; }
  };
  await Promise.all([...REGIONS.map(worker), readInC()]);
  await setup.wan.healAll();
  const healedAt = Date.now();
  let convergedMs = null;
  if (setup.name !== 'geo') {
    try {
      await waitFor('C to see the write made in A during the cut', async () => {
        const c = await connectTo(setup.target('C', 'read', 'C'));
        try { const [rows] = await c.query('SELECT 1 FROM lab.probe WHERE id = ?', [marker]); return rows.length > 0; } finally { c.destroy(); }
      }, 90_000);
      convergedMs = Date.now() - healedAt;
    } catch { convergedMs = null; }
  }
  if (setup.name === 'galera') await Promise.all(setup.nodes.map((n) => setup.waitSynced(n, 90_000).catch(() => {})));
  return {
    cutSeconds: o.cut,
    perRegion: Object.fromEntries(REGIONS.map((r) => [r, {
      writesOk: res[r].ok, writesFailed: res[r].failed, errors: res[r].errors, firstOkAfterMs: res[r].firstOkAfterMs,
      writeLatency: summary(res[r].lat), canWrite: res[r].ok > 0 && res[r].lat.length > 0 && (res[r].firstOkAfterMs ?? Infinity) < ms,
      ...(r === 'C' ? { readDuringCut: res.C.read } : {}),
    }])),
    convergedAfterHealMs: convergedMs,
  };
}

// ---------------------------------------------------------------- report
function table(results) {
  const rows = [['setup', 'region', 'write p50', 'write p99', 'w/s', 'stale p50', 'stale p99', 'hot commit p50', 'hot p99', 'hot aborts', 'C cut: writes ok/failed', 'notes']];
  for (const [name, r] of Object.entries(results.setups)) {
    if (r.error) { rows.push([name, '-', ...Array(9).fill('-'), `failed: ${r.error.slice(0, 60)}`]); continue; }
    for (const reg of REGIONS) {
      const w = r.writes[reg], h = r.hotRow.perRegion[reg], c = r.cut.perRegion[reg];
      const notes = [];
      if (name === 'geo') notes.push(`home p50 ${w.writeHomeUsers.p50} / traveller p50 ${w.writeTravellers.p50}`);
      if (reg === 'C' && c.readDuringCut) notes.push(`C read in cut: ${c.readDuringCut.split(' (')[0]}`);
      if (c.firstOkAfterMs != null && c.firstOkAfterMs > 1000) notes.push(`writes resumed after ${(c.firstOkAfterMs / 1000).toFixed(1)}s`);
      rows.push([reg === 'A' ? name : '', reg, w.write.p50, w.write.p99, w.writesPerSec, w.staleness?.p50 ?? '-', w.staleness?.p99 ?? '-',
        h.commit.p50 ?? '-', h.commit.p99 ?? '-', `${h.aborts}/${h.commits + h.aborts}`, `${c.writesOk}/${c.writesFailed}`, notes.join('; ')].map((x) => String(x ?? '-')));
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(rows[0]), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------- provenance
// The same fields the bench runner records (load-tests/runner/provenance.ts), so every result file says
// which commit, machine and software produced it. The lab caps nothing: its caps are "none".
function git(args) {
  try { return execFileSync('git', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return null; }
}
function labProvenance(argv) {
  const commit = git(['rev-parse', 'HEAD']);
  const porcelain = commit ? git(['status', '--porcelain', '--untracked-files=no']) : null;
  const round = (l) => Math.round(l * 100) / 100;
  return {
    commit, dirty: porcelain == null ? null : porcelain.length > 0, date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryMb: Math.round(os.totalmem() / 2 ** 20), os: `${os.platform()} ${os.release()}` },
    node: process.version, database: null, redis: null,
    loadavg: { before: os.loadavg().map(round), after: null },
    caps: { mechanism: null, uncappedOk: true, modes: {}, note: 'the lab does not cap CPU' },
    command: ['npm run lab -- multi-region', ...argv.filter((a) => a !== 'multi-region')].join(' '),
    modeDurationsS: {},
  };
}

// ---------------------------------------------------------------- main
export async function main(argv) {
  const o = parseArgs(argv);
  fs.mkdirSync(LAB_DIR, { recursive: true });
  killLeftovers();
  binaries({ needGalera: o.setups.includes('galera') });
  console.log(`lab multi-region: delay ${o.delays ? o.delays.join(', ') : o.delay} ms one-way, ${o.duration}s writes, ${o.duration / 2}s hot row, ${o.cut}s cut, ${o.concurrency} clients/region, setups ${o.setups.join(',')}`);
  const results = { generatedAt: new Date().toISOString(), command: `npm run lab -- multi-region ${argv.filter((a) => a !== 'multi-region').join(' ')}`.trim(),
    host: { cpus: os.cpus().length, note: 'all regions share one machine; the WAN is a user-space delay proxy' },
    options: { delayMs: o.delays ?? o.delay, durationS: o.duration, cutS: o.cut, concurrency: o.concurrency, remoteShare: o.remoteShare }, provenance: labProvenance(argv), setups: {} };
  let current = null;
  const cleanup = () => { current?.setup?.nodes?.forEach((n) => n.kill()); };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });
  // --delays: the same setups once per delay; each delay's setups land under delays.<ms> of one file.
  const delays = o.delays ?? [o.delay];
  if (o.delays) results.delays = {};
  for (const delay of delays) {
  const od = { ...o, delay };
  const into = o.delays ? (results.delays[delay] = { options: { ...results.options, delayMs: delay }, setups: {} }).setups : results.setups;
  if (o.delays) console.log(`\n== one-way delay ${delay} ms`);
  for (const name of o.setups) {
    const wan = new WanHost({ delayMs: delay });
    const setup = new SETUPS[name](od, wan);
    current = { setup };
    const t0 = Date.now();
    try {
      console.log(`\n[${name}] ${setup.describe}: starting`);
      await setup.start();
      results.provenance.database ??= (await setup.nodes?.[0]?.sql('SELECT VERSION() AS v').catch(() => null))?.[0]?.v ?? null;
      console.log(`[${name}] up in ${((Date.now() - t0) / 1000).toFixed(1)}s; writes for ${o.duration}s`);
      const writes = await writePhase(setup, od);
      console.log(`[${name}] hot row for ${o.duration / 2}s`);
      const hotRow = await hotRowPhase(setup, od);
      console.log(`[${name}] cutting region C off for ${o.cut}s`);
      const cut = await cutPhase(setup, od);
      into[name] = { describe: setup.describe, writes, hotRow, cut, wan: (await wan.stats()).filter((l) => l.bytes > 0).map(({ link, bytes, maxEarlyMs }) => ({ link, bytes, maxEarlyMs })) };
    } catch (e) {
      console.error(`[${name}] failed: ${e.message}`);
      into[name] = { describe: setup.describe, error: e.message };
    } finally {
      await setup.stop();
      await wan.close().catch(() => {});
      results.provenance.modeDurationsS[o.delays ? `${name}@${delay}ms` : name] = Math.round((Date.now() - t0) / 100) / 10;
      console.log(`[${name}] done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
  }
  }
  results.provenance.loadavg.after = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const out = path.resolve(REPO, o.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  const tables = o.delays ? delays.map((d) => `one-way delay ${d} ms\n${table({ setups: results.delays[d].setups })}`).join('\n\n') : table(results);
  console.log(`\n${tables}\n\nms; stale = time from A's commit ack until the row is readable in that region; hot aborts = deadlock/certification (1213) / attempts.\nwrote ${path.relative(REPO, out)}`);
  const all = o.delays ? Object.values(results.delays).flatMap((d) => Object.values(d.setups)) : Object.values(results.setups);
  return all.some((s) => s.error) ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { console.error(`lab: ${e.message}`); process.exit(1); });
}
