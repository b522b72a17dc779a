/**
 * SqlDialect: the one place where MySQL 8.4 and MariaDB 10.11 differ.
 *
 * Chosen from the server's VERSION() string. Everything else in the code base writes SQL that both accept
 * (JSON_EXTRACT/JSON_UNQUOTE instead of ->>, information_schema for partitions, generated columns with
 * ordinary indexes). What cannot be written once lives here: GTIDs (MariaDB domain-server-seq vs MySQL
 * uuid:interval sets), waiting for a GTID on a replica, replica status and its column names, replication
 * setup statements, and how to ask EXPLAIN for partitions.
 *
 * The statements themselves live in dialect-sql.js (plain JS, so the native stack launcher and the lab, which
 * run before anything is compiled, use the very same text); this class adds the queries and GTID arithmetic.
 */
import { mariadb, mariaDomains, mysql, mysqlSet } from './dialect-sql.js';

export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<any>;
}

export interface ReplicaStatus {
  configured: boolean;
  ioRunning: boolean;
  sqlRunning: boolean;
  secondsBehind: number | null;
  /** Position the replica has applied, in the dialect's GTID format. */
  appliedGtid: string;
  lastError: string;
}

export abstract class SqlDialect {
  abstract readonly name: 'mariadb' | 'mysql';
  /** This server's statements (dialect-sql.js), for the few callers that build replication SQL themselves. */
  abstract readonly sql: typeof mariadb | typeof mysql;
  constructor(readonly version: string) {}

  /** GTID of the last transaction this session committed (call on the same connection, right after it). */
  abstract lastWriteGtid(conn: Queryable): Promise<string>;
  /** Wait on this replica connection until `gtid` is applied; true when applied within `timeoutMs`. */
  abstract waitForGtid(conn: Queryable, gtid: string, timeoutMs: number): Promise<boolean>;
  /** The node's current GTID position (primary: what it has written; replica: what it has applied). */
  abstract gtidPosition(conn: Queryable): Promise<string>;
  abstract replicaStatus(conn: Queryable): Promise<ReplicaStatus>;
  abstract startReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD'): string;
  abstract stopReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD'): string;
  /** EXPLAIN that reports the partitions a query touches. */
  abstract explainPartitionsSql(select: string): string;
  /** A shared row lock after a SELECT (the bucket fence): MySQL 8's FOR SHARE; MariaDB 10.11 only has LOCK IN SHARE MODE. */
  abstract readonly sharedLock: string;

  // ---- GTID arithmetic for replica routing (ReplicaRouter, ReplicaMonitor, ConsistencyToken)
  /** Is `text` a GTID position in this dialect's format (what a consistency token carries)? */
  abstract isGtid(text: string): boolean;
  /** Has a node at position `applied` applied everything in `wanted`? */
  abstract gtidCovers(applied: string, wanted: string): boolean;
  /** A position covering both (the newer of two tokens). */
  abstract mergeGtids(a: string, b: string): string;
  /** Transactions in `primary` that `replica` has not applied (0 when caught up). */
  abstract gtidBehind(primary: string, replica: string): number;
  /** GTID of a write taken from the OK packet's session-state tracking (mysql2 `stateChanges`); '' when not tracked. */
  abstract gtidFromResult(result: unknown): string;

  /** Rows of EXPLAIN with a normalised `partitions` array. */
  async explainPartitions(conn: Queryable, select: string, params: unknown[] = []) {
    const rows: any[] = await conn.query(this.explainPartitionsSql(select), params);
    return rows.map((r) => ({
      table: r.table as string,
      type: r.type as string,
      key: (r.key ?? null) as string | null,
      rows: Number(r.rows ?? 0),
      partitions: r.partitions ? String(r.partitions).split(',') : [],
      extra: (r.Extra ?? r.extra ?? '') as string,
    }));
  }
}

export class MariaDbDialect extends SqlDialect {
  readonly name = mariadb.name;
  readonly sql = mariadb;
  readonly sharedLock = mariadb.sharedLock;

  async lastWriteGtid(conn: Queryable) {
    const [row] = await conn.query(`SELECT ${mariadb.lastWriteGtid} AS gtid`);
    return String(row?.gtid ?? '');
  }
  async waitForGtid(conn: Queryable, gtid: string, timeoutMs: number) {
    if (!gtid) return true;
    const [row] = await conn.query(`SELECT ${mariadb.waitForGtid('?', '?')} AS r`, [gtid, timeoutMs / 1000]);
    return Number(row?.r) === 0;
  }
  async gtidPosition(conn: Queryable) {
    const [row] = await conn.query(`SELECT ${mariadb.currentPosition} AS pos`);
    return String(row?.pos ?? '');
  }
  async replicaStatus(conn: Queryable): Promise<ReplicaStatus> {
    const [s] = await conn.query(mariadb.replicaStatus);
    if (!s) return { configured: false, ioRunning: false, sqlRunning: false, secondsBehind: null, appliedGtid: '', lastError: '' };
    const [pos] = await conn.query(`SELECT ${mariadb.appliedPosition} AS pos`);
    const c = mariadb.columns;
    return {
      configured: true,
      ioRunning: s[c.io] === 'Yes',
      sqlRunning: s[c.sql] === 'Yes',
      secondsBehind: s[c.secondsBehind] == null ? null : Number(s[c.secondsBehind]),
      appliedGtid: String(pos?.pos ?? ''),
      lastError: s.Last_SQL_Error || s.Last_IO_Error || '',
    };
  }
  startReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return mariadb.startReplica(thread);
  }
  stopReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return mariadb.stopReplica(thread);
  }
  explainPartitionsSql(select: string) {
    return mariadb.explainPartitions(select);
  }
  isGtid(text: string) {
    return /^\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20}){0,31}$/.test(text);
  }
  gtidCovers(applied: string, wanted: string) {
    const have = mariaDomains(applied);
    for (const [domain, seq] of mariaDomains(wanted)) if ((have.get(domain)?.seq ?? -1n) < seq.seq) return false;
    return true;
  }
  mergeGtids(a: string, b: string) {
    const m = mariaDomains(a);
    for (const [domain, g] of mariaDomains(b)) if ((m.get(domain)?.seq ?? -1n) < g.seq) m.set(domain, g);
    return [...m.values()].map((g) => g.text).join(',');
  }
  gtidBehind(primary: string, replica: string) {
    const have = mariaDomains(replica);
    let n = 0n;
    for (const [domain, g] of mariaDomains(primary)) {
      const d = g.seq - (have.get(domain)?.seq ?? 0n);
      if (d > 0n) n += d;
    }
    return Number(n);
  }
  gtidFromResult(result: any) {
    return String(result?.stateChanges?.systemVariables?.last_gtid ?? '');
  }
}

export class MySqlDialect extends SqlDialect {
  readonly name = mysql.name;
  readonly sql = mysql;
  readonly sharedLock = mysql.sharedLock;

  async lastWriteGtid(conn: Queryable) {
    const [row] = await conn.query(`SELECT ${mysql.lastWriteGtid} AS gtid`);
    return String(row?.gtid ?? '').replace(/\s+/g, '');
  }
  async waitForGtid(conn: Queryable, gtid: string, timeoutMs: number) {
    if (!gtid) return true;
    const [row] = await conn.query(`SELECT ${mysql.waitForGtid('?', '?')} AS r`, [gtid, timeoutMs / 1000]);
    return Number(row?.r) === 0;
  }
  async gtidPosition(conn: Queryable) {
    const [row] = await conn.query(`SELECT ${mysql.currentPosition} AS pos`);
    return String(row?.pos ?? '').replace(/\s+/g, '');
  }
  async replicaStatus(conn: Queryable): Promise<ReplicaStatus> {
    const [s] = await conn.query(mysql.replicaStatus);
    if (!s) return { configured: false, ioRunning: false, sqlRunning: false, secondsBehind: null, appliedGtid: '', lastError: '' };
    const c = mysql.columns;
    return {
      configured: true,
      ioRunning: s[c.io] === 'Yes',
      sqlRunning: s[c.sql] === 'Yes',
      secondsBehind: s[c.secondsBehind] == null ? null : Number(s[c.secondsBehind]),
      appliedGtid: String(s.Executed_Gtid_Set ?? '').replace(/\s+/g, ''),
      lastError: s.Last_SQL_Error || s.Last_IO_Error || '',
    };
  }
  startReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return mysql.startReplica(thread);
  }
  stopReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return mysql.stopReplica(thread);
  }
  explainPartitionsSql(select: string) {
    return mysql.explainPartitions(select);
  }
  isGtid(text: string) {
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d{1,19}(-\d{1,19})?)+(,[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d{1,19}(-\d{1,19})?)+){0,31}$/i.test(text);
  }
  gtidCovers(applied: string, wanted: string) {
    const have = mysqlSet(applied);
    for (const [uuid, ranges] of mysqlSet(wanted)) {
      const h = have.get(uuid) ?? [];
      for (const [lo, hi] of ranges) if (!h.some(([a, b]) => a <= lo && hi <= b)) return false;
    }
    return true;
  }
  mergeGtids(a: string, b: string) {
    // WAIT_FOR_EXECUTED_GTID_SET accepts a set that names a uuid twice, so a union is a join.
    return a === b || !b ? a : !a ? b : `${a},${b}`;
  }
  gtidBehind(primary: string, replica: string) {
    return Math.max(0, mysql.transactions(primary) - mysql.transactions(replica));
  }
  gtidFromResult(result: any) {
    const g = result?.stateChanges?.gtids;
    return Array.isArray(g) && g.length ? String(g[0]).replace(/\s+/g, '') : '';
  }
}

export function dialectFor(version: string): SqlDialect {
  return /mariadb/i.test(version) ? new MariaDbDialect(version) : new MySqlDialect(version);
}

export async function detectDialect(conn: Queryable): Promise<SqlDialect> {
  const [row] = await conn.query('SELECT VERSION() AS v');
  return dialectFor(String(row.v));
}
