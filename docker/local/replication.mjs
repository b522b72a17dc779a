// GTID replication of the catalog (primary + replicas): set-up, catching up, and changing the primary.
// Every statement comes from the server's dialect (libs/db/src/dialect-sql.js, shared with SqlDialect).
//   promote <replica> (planned switchover): wait for the candidate to catch up, make the old primary read_only,
//     wait for its final GTID position on the candidate, promote it (stop + reset replication, read_only off),
//     repoint the other replica and the old primary at it (MASTER_USE_GTID=slave_pos / SOURCE_AUTO_POSITION).
//   failover (unplanned, the primary is dead): let each live replica apply what it had received, promote the
//     one with the most transactions, repoint the rest. The dead primary rejoins as a replica on `start`;
//     what it acknowledged but never shipped is lost (asynchronous replication), and if it had any,
//     gtid_strict_mode makes its rejoin fail loudly instead of diverging silently.
// Node names, ports and datadirs never change, only roles (nodes.mjs catalogRoles); a node's my.cnf follows its
// role on the next start (read_only=ON on replicas), so kill/start/up/status keep working after a promotion.
//   STACK_PROMOTE_TIMEOUT_S (default 30): how long a candidate may take to catch up.
import { NODE_TIMEOUT_MS, fail, sleep } from './env.mjs';
import { binaries, dialect } from './install.mjs';
import { answers, sql } from './clients.mjs';
import { REPL_ACCOUNT } from './accounts.mjs';
import { nodeNamed, nodes, primaryNode, writeRoles } from './nodes.mjs';
import { livePid, logTail, withLock } from './procs.mjs';

const toNum = (v) => (/^\d+$/.test(v ?? '') ? Number(v) : null);
/** The replica status row, or null when the node was never pointed at a source. */
export async function replicaStatus(n) {
  const d = dialect();
  const out = await sql(n, d.replicaStatus, { vertical: true });
  if (!out) return null;
  const f = Object.fromEntries([...out.matchAll(/^\s*(\w+): ?(.*)$/gm)].map((m) => [m[1], m[2]]));
  const c = d.columns;
  return {
    io: f[c.io], sql: f[c.sql], secondsBehind: toNum(f[c.secondsBehind]), gtidIoPos: f[c.received],
    lastIoError: f.Last_IO_Error || '', lastSqlError: f.Last_SQL_Error || '', sourcePort: toNum(f[c.sourcePort]),
  };
}

/** Everything in the node's binlog (its own writes and what it replicated), white space removed. */
export async function gtidPosition(n) {
  return (await sql(n, `SELECT ${dialect().binlogPosition}`)).replace(/\\n|\s/g, '');
}

/** Wait until `n` has applied `pos`; true when it did within `secs` (no position: nothing to wait for). */
async function waitPos(n, pos, secs) {
  return !pos || (await sql(n, `SELECT ${dialect().waitForGtid(`'${pos}'`, secs)}`, { timeout: (secs + 5) * 1000 })) === '0';
}

/** (Re)point a node at the current primary, read_only; `st` is its replication status (null: never a replica). */
async function pointAtPrimary(n, st) {
  const d = dialect();
  if (st) await sql(n, d.stopReplica());
  else if (d.adoptOwnPosition) await sql(n, d.adoptOwnPosition);
  const source = d.changeSource({ host: '127.0.0.1', port: primaryNode().port, ...REPL_ACCOUNT, gtid: true, connectRetryS: 1 });
  await sql(n, `${d.readOnly(true)}; ${source}; ${d.startReplica()}`);
}

/** Configure replication if the datadir has none, (re)start stopped threads, wait until caught up. */
export async function ensureReplication(n, ms = NODE_TIMEOUT_MS) {
  const d = dialect();
  let st = await replicaStatus(n);
  // Not configured, or following a node that is no longer the primary (it was down during a promote): point it.
  if (!st || st.sourcePort !== primaryNode().port) await pointAtPrimary(n, st);
  else if (st.io === 'No' || st.sql === 'No') await sql(n, d.startReplica());
  const end = Date.now() + ms;
  for (; Date.now() < end; await sleep(150)) {
    st = await replicaStatus(n);
    if (st?.lastSqlError) fail(`${n.name}: replication SQL thread failed: ${st.lastSqlError}`);
    // A rejoining old primary with transactions the new one never got: gtid_strict_mode refuses, say so now.
    if (st?.io === 'No' && /gtid/i.test(st.lastIoError)) fail(`${n.name}: replication IO thread refused: ${st.lastIoError}`);
    if (st?.io === 'Yes' && st?.sql === 'Yes') break;
  }
  if (!(st?.io === 'Yes' && st?.sql === 'Yes')) fail(`${n.name}: replication not running after ${ms / 1000}s (IO=${st?.io} SQL=${st?.sql} ${st?.lastIoError})\n${logTail(n)}`);
  const pos = await gtidPosition(primaryNode());
  const secs = Math.max(1, Math.round((end - Date.now()) / 1000));
  if (!(await waitPos(n, pos, secs))) fail(`${n.name}: did not catch up with the primary (${pos}) in time`);
}

/** STOP / START the replica's SQL thread: the IO thread keeps fetching, so lag builds up for real. */
export async function stopReplicaSql(name) { await sql(replicaNode(name), dialect().stopReplica('SQL_THREAD')); }
export async function startReplicaSql(name) { await sql(replicaNode(name), dialect().startReplica('SQL_THREAD')); }
function replicaNode(name) {
  const n = nodeNamed(name);
  return n.role === 'replica' ? n : fail(`${name} is not a replica`);
}

// ---------------------------------------------------------------- promote / failover
const promoteTimeoutS = () => {
  const v = Number(process.env.STACK_PROMOTE_TIMEOUT_S || 30);
  return Number.isInteger(v) && v >= 1 ? v : fail(`STACK_PROMOTE_TIMEOUT_S must be an integer >= 1, got "${process.env.STACK_PROMOTE_TIMEOUT_S}"`);
};
/** Repoint every live catalog node but the primary at it; { [name]: 'ok' | error message | 'down' }. */
async function repointCatalog() {
  const out = {};
  for (const n of nodes.filter((x) => x.catalog && x.role === 'replica')) {
    if (!livePid(n) || !(await answers(n))) { out[n.name] = 'down (repointed on its next start)'; continue; }
    try { await ensureReplication(n); out[n.name] = 'ok'; } catch (e) { out[n.name] = e.message.split('\n')[0]; }
  }
  return out;
}
const catalogNode = (name) => { const n = nodeNamed(name); return n.catalog ? n : fail(`${name} is not a catalog node`); };
/** Stop replicating and take writes. */
const makePrimary = (n) => { const d = dialect(); return sql(n, `${d.stopReplica()}; ${d.resetReplicaAll}; ${d.readOnly(false)}`); };

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
    if (!(await waitPos(cand, await gtidPosition(old), timeoutS))) fail(`${name} did not catch up with ${old.name} within ${timeoutS}s`);
    await sql(old, d.readOnly(true));
    const readOnlyAt = Date.now();
    let gtid;
    try {
      gtid = await gtidPosition(old);
      if (!(await waitPos(cand, gtid, timeoutS))) fail(`${name} did not apply ${old.name}'s last transactions (${gtid}) within ${timeoutS}s`);
      await makePrimary(cand);
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
      positions[n.name] = await gtidPosition(n);
    }
    const ranked = Object.entries(positions).sort(([, a], [, b]) => d.transactions(b) - d.transactions(a));
    if (!ranked.length) fail('no live replica to promote');
    const [name, gtid] = ranked[0];
    const cand = nodeNamed(name);
    await makePrimary(cand);
    writeRoles({ primary: cand.name, previous: old.name, how: 'failover', gtid, at: new Date().toISOString() });
    const repointed = await repointCatalog();
    return { primary: cand.name, previous: old.name, gtid, positions, totalMs: Date.now() - t0, repointed };
  });
}
