/**
 * SqlDialect: the one place where MySQL 8.4 and MariaDB 10.11 differ.
 *
 * Chosen from the server's VERSION() string. Everything else in the code base writes SQL that both accept
 * (JSON_EXTRACT/JSON_UNQUOTE instead of ->>, information_schema for partitions, generated columns with
 * ordinary indexes). What cannot be written once lives here: GTIDs (MariaDB domain-server-seq vs MySQL
 * uuid:interval sets), waiting for a GTID on a replica, replica status and its column names, replication
 * setup statements, and how to ask EXPLAIN for partitions.
 */
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
  readonly name = 'mariadb' as const;
  readonly sharedLock = 'LOCK IN SHARE MODE';

  async lastWriteGtid(conn: Queryable) {
    const [row] = await conn.query('SELECT @@last_gtid AS gtid');
    return String(row?.gtid ?? '');
  }
  async waitForGtid(conn: Queryable, gtid: string, timeoutMs: number) {
    if (!gtid) return true;
    const [row] = await conn.query('SELECT MASTER_GTID_WAIT(?, ?) AS r', [gtid, timeoutMs / 1000]);
    return Number(row?.r) === 0;
  }
  async gtidPosition(conn: Queryable) {
    const [row] = await conn.query(
      // gtid_current_pos: per domain, this server's own last binlog GTID if it is newer than what it replicated,
      // else gtid_slave_pos. Right for a primary, a replica, and a primary made read_only by a switchover that is
      // not yet repointed (its gtid_slave_pos is empty or stale: reading that refused its own tokens as "ahead").
      'SELECT @@global.gtid_current_pos AS pos',
    );
    return String(row?.pos ?? '');
  }
  async replicaStatus(conn: Queryable): Promise<ReplicaStatus> {
    const [s] = await conn.query('SHOW SLAVE STATUS');
    if (!s) return { configured: false, ioRunning: false, sqlRunning: false, secondsBehind: null, appliedGtid: '', lastError: '' };
    const [pos] = await conn.query('SELECT @@gtid_slave_pos AS pos');
    return {
      configured: true,
      ioRunning: s.Slave_IO_Running === 'Yes',
      sqlRunning: s.Slave_SQL_Running === 'Yes',
      secondsBehind: s.Seconds_Behind_Master == null ? null : Number(s.Seconds_Behind_Master),
      appliedGtid: String(pos?.pos ?? ''),
      lastError: s.Last_SQL_Error || s.Last_IO_Error || '',
    };
  }
  startReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return `START SLAVE${thread ? ' ' + thread : ''}`;
  }
  stopReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return `STOP SLAVE${thread ? ' ' + thread : ''}`;
  }
  explainPartitionsSql(select: string) {
    return `EXPLAIN PARTITIONS ${select}`;
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
  readonly name = 'mysql' as const;
  readonly sharedLock = 'FOR SHARE';

  async lastWriteGtid(conn: Queryable) {
    // gtid_executed after our commit contains our own GTID; waiting for the whole set is a safe superset.
    const [row] = await conn.query('SELECT @@global.gtid_executed AS gtid');
    return String(row?.gtid ?? '').replace(/\s+/g, '');
  }
  async waitForGtid(conn: Queryable, gtid: string, timeoutMs: number) {
    if (!gtid) return true;
    const [row] = await conn.query('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r', [gtid, timeoutMs / 1000]);
    return Number(row?.r) === 0;
  }
  async gtidPosition(conn: Queryable) {
    const [row] = await conn.query('SELECT @@global.gtid_executed AS pos');
    return String(row?.pos ?? '').replace(/\s+/g, '');
  }
  async replicaStatus(conn: Queryable): Promise<ReplicaStatus> {
    const [s] = await conn.query('SHOW REPLICA STATUS');
    if (!s) return { configured: false, ioRunning: false, sqlRunning: false, secondsBehind: null, appliedGtid: '', lastError: '' };
    return {
      configured: true,
      ioRunning: s.Replica_IO_Running === 'Yes',
      sqlRunning: s.Replica_SQL_Running === 'Yes',
      secondsBehind: s.Seconds_Behind_Source == null ? null : Number(s.Seconds_Behind_Source),
      appliedGtid: String(s.Executed_Gtid_Set ?? '').replace(/\s+/g, ''),
      lastError: s.Last_SQL_Error || s.Last_IO_Error || '',
    };
  }
  startReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return `START REPLICA${thread ? ' ' + thread : ''}`;
  }
  stopReplicaSql(thread?: 'SQL_THREAD' | 'IO_THREAD') {
    return `STOP REPLICA${thread ? ' ' + thread : ''}`;
  }
  explainPartitionsSql(select: string) {
    // MySQL 8 always reports partitions; EXPLAIN PARTITIONS is a syntax error there.
    return `EXPLAIN ${select}`;
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
    const count = (set: Map<string, Array<[bigint, bigint]>>) => [...set.values()].flat().reduce((n, [lo, hi]) => n + (hi - lo + 1n), 0n);
    const d = count(mysqlSet(primary)) - count(mysqlSet(replica));
    return d > 0n ? Number(d) : 0;
  }
  gtidFromResult(result: any) {
    const g = result?.stateChanges?.gtids;
    return Array.isArray(g) && g.length ? String(g[0]).replace(/\s+/g, '') : '';
  }
}

/** MariaDB positions: one domain-server-seq per replication domain. */
function mariaDomains(pos: string): Map<string, { seq: bigint; text: string }> {
  const m = new Map<string, { seq: bigint; text: string }>();
  for (const g of pos.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [domain, , seq] = g.split('-');
    if (seq !== undefined) m.set(domain, { seq: BigInt(seq), text: g });
  }
  return m;
}

/** MySQL GTID sets: uuid -> [lo, hi] intervals (gtid_executed is normalised, so a wanted interval lies inside one). */
function mysqlSet(set: string): Map<string, Array<[bigint, bigint]>> {
  const m = new Map<string, Array<[bigint, bigint]>>();
  for (const part of set.replace(/\s+/g, '').split(',').filter(Boolean)) {
    const [uuid, ...ranges] = part.split(':');
    const list = m.get(uuid.toLowerCase()) ?? [];
    for (const r of ranges) {
      const [lo, hi = lo] = r.split('-');
      list.push([BigInt(lo), BigInt(hi)]);
    }
    m.set(uuid.toLowerCase(), list);
  }
  return m;
}

export function dialectFor(version: string): SqlDialect {
  return /mariadb/i.test(version) ? new MariaDbDialect(version) : new MySqlDialect(version);
}

export async function detectDialect(conn: Queryable): Promise<SqlDialect> {
  const [row] = await conn.query('SELECT VERSION() AS v');
  return dialectFor(String(row.v));
}
