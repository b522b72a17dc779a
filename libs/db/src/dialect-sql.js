// The SQL text that differs between MariaDB 10.11 and MySQL 8.4, in one plain-JS module.
// Why plain JS: the native stack launcher (docker/local/) and the multi-region lab (load-tests/lab/) are .mjs
// run by Node before anything is compiled (jest's globalSetup starts the stack, then builds), so they cannot
// import dialect.ts or its compiled copy in dist/. SqlDialect (dialect.ts) imports this module too (tsc copies
// it into dist with allowJs), so every statement that is written differently per server is written once, here.
// The launcher and the lab reach it as `#dialect-sql` (package.json "imports"), never by a path into libs/.
// MariaDB is what every test runs; the MySQL column is kept obviously right against the 8.4 manual
// (CHANGE REPLICATION SOURCE, SHOW REPLICA STATUS, WAIT_FOR_EXECUTED_GTID_SET, super_read_only).

/**
 * @typedef {object} SourceOptions what CHANGE MASTER / CHANGE REPLICATION SOURCE sets; an option left out is not named
 * @property {string} [host]
 * @property {number} [port]
 * @property {string} [user]
 * @property {string} [password]
 * @property {boolean} [gtid] follow by GTID (MariaDB MASTER_USE_GTID=slave_pos, MySQL SOURCE_AUTO_POSITION=1)
 * @property {number} [connectRetryS]
 * @property {number} [heartbeatS]
 * @property {number} [delayS] delayed replication (run with replication stopped)
 */

/** @param {string} verb @param {Array<[string, string | number | undefined]>} pairs */
const assignments = (verb, pairs) => `${verb} ${pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(', ')}`;
/** @param {string | undefined} s */
const str = (s) => (s === undefined ? undefined : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`);
/** @param {string} stmt @param {string | undefined} thread */
const withThread = (stmt, thread) => `${stmt}${thread ? ' ' + thread : ''}`;

export const mariadb = {
  name: /** @type {const} */ ('mariadb'),
  /** @param {SourceOptions} o */
  changeSource: (o) => assignments('CHANGE MASTER TO', [
    ['MASTER_HOST', str(o.host)], ['MASTER_PORT', o.port], ['MASTER_USER', str(o.user)], ['MASTER_PASSWORD', str(o.password)],
    ['MASTER_USE_GTID', o.gtid ? 'slave_pos' : undefined], ['MASTER_CONNECT_RETRY', o.connectRetryS],
    ['MASTER_HEARTBEAT_PERIOD', o.heartbeatS], ['MASTER_DELAY', o.delayS],
  ]),
  /** @param {'SQL_THREAD' | 'IO_THREAD'} [thread] */
  startReplica: (thread) => withThread('START SLAVE', thread),
  /** @param {'SQL_THREAD' | 'IO_THREAD'} [thread] */
  stopReplica: (thread) => withThread('STOP SLAVE', thread),
  resetReplicaAll: 'RESET SLAVE ALL',
  replicaStatus: 'SHOW SLAVE STATUS',
  /** Column names of the replica status row. */
  columns: {
    io: 'Slave_IO_Running', sql: 'Slave_SQL_Running', secondsBehind: 'Seconds_Behind_Master', sourcePort: 'Master_Port',
    /** What the IO thread has received (the relay log's end). */
    received: 'Gtid_IO_Pos',
  },
  /** The GTID position this server has applied as a replica (MySQL: the Executed_Gtid_Set column). */
  appliedPosition: '@@gtid_slave_pos',
  /** Everything in this server's binlog, its own writes and (log_slave_updates) what it replicated. */
  binlogPosition: '@@global.gtid_binlog_pos',
  // gtid_current_pos: per domain, this server's own last binlog GTID if it is newer than what it replicated,
  // else gtid_slave_pos. Right for a primary, a replica, and a primary made read_only by a switchover that is
  // not yet repointed (its gtid_slave_pos is empty or stale: reading that refused its own tokens as "ahead").
  currentPosition: '@@global.gtid_current_pos',
  /** GTID of the last transaction this session committed. */
  lastWriteGtid: '@@last_gtid',
  /** 0 once `gtid` is applied, -1 on timeout; both arguments are SQL (a literal, or `?`). @param {string} gtid @param {string | number} seconds */
  waitForGtid: (gtid, seconds) => `MASTER_GTID_WAIT(${gtid}, ${seconds})`,
  /** @param {boolean} on */
  readOnly: (on) => `SET GLOBAL read_only=${on ? 'ON' : 'OFF'}`,
  // A node that was never a replica (or was promoted since) replicates from what it already has, not from an
  // empty or stale gtid_slave_pos (which would replay, or skip, transactions).
  adoptOwnPosition: /** @type {string | null} */ ('SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos'),
  // MariaDB 10.5+ split REPLICATION CLIENT: SHOW SLAVE STATUS needs SLAVE MONITOR.
  monitorPrivilege: 'SLAVE MONITOR',
  // ALL includes READ ONLY ADMIN on MariaDB, which would let the app write to read_only replicas.
  readOnlyBypass: /** @type {string | null} */ ('READ_ONLY ADMIN'),
  /** @param {string} select */
  explainPartitions: (select) => `EXPLAIN PARTITIONS ${select}`,
  /** A shared row lock after a SELECT: MariaDB 10.11 has only LOCK IN SHARE MODE. */
  sharedLock: 'LOCK IN SHARE MODE',
  /** my.cnf lines for GTID replication with session tracking of the last GTID. */
  serverConfig: ['log_slave_updates=ON', 'gtid_strict_mode=ON', 'innodb_log_file_size=64M',
    'session_track_system_variables=autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid'],
  /** my.cnf lines a replica adds to read_only=ON. */
  replicaConfig: /** @type {string[]} */ ([]),
  /** Transactions a position names (the sum of each domain's sequence number). @param {string} pos */
  transactions: (pos) => [...mariaDomains(pos).values()].reduce((sum, g) => sum + Number(g.seq), 0),
};

export const mysql = {
  name: /** @type {const} */ ('mysql'),
  /** @param {SourceOptions} o */
  changeSource: (o) => assignments('CHANGE REPLICATION SOURCE TO', [
    ['SOURCE_HOST', str(o.host)], ['SOURCE_PORT', o.port], ['SOURCE_USER', str(o.user)], ['SOURCE_PASSWORD', str(o.password)],
    // GET_SOURCE_PUBLIC_KEY: caching_sha2_password over a non-TLS link needs the source's RSA key.
    ['SOURCE_AUTO_POSITION', o.gtid ? 1 : undefined], ['GET_SOURCE_PUBLIC_KEY', o.password !== undefined ? 1 : undefined],
    ['SOURCE_CONNECT_RETRY', o.connectRetryS], ['SOURCE_HEARTBEAT_PERIOD', o.heartbeatS], ['SOURCE_DELAY', o.delayS],
  ]),
  /** @param {'SQL_THREAD' | 'IO_THREAD'} [thread] */
  startReplica: (thread) => withThread('START REPLICA', thread),
  /** @param {'SQL_THREAD' | 'IO_THREAD'} [thread] */
  stopReplica: (thread) => withThread('STOP REPLICA', thread),
  resetReplicaAll: 'RESET REPLICA ALL',
  replicaStatus: 'SHOW REPLICA STATUS',
  columns: { io: 'Replica_IO_Running', sql: 'Replica_SQL_Running', secondsBehind: 'Seconds_Behind_Source', sourcePort: 'Source_Port', received: 'Retrieved_Gtid_Set' },
  appliedPosition: null,
  // gtid_executed may hold newlines between uuids; callers strip white space.
  binlogPosition: '@@global.gtid_executed',
  currentPosition: '@@global.gtid_executed',
  // gtid_executed after our commit contains our own GTID; waiting for the whole set is a safe superset.
  lastWriteGtid: '@@global.gtid_executed',
  /** @param {string} gtid @param {string | number} seconds */
  waitForGtid: (gtid, seconds) => `WAIT_FOR_EXECUTED_GTID_SET(${gtid}, ${seconds})`,
  /** @param {boolean} on */
  readOnly: (on) => (on ? 'SET GLOBAL super_read_only=ON' : 'SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF'),
  adoptOwnPosition: /** @type {string | null} */ (null), // SOURCE_AUTO_POSITION starts from gtid_executed by itself
  monitorPrivilege: 'REPLICATION CLIENT',
  readOnlyBypass: /** @type {string | null} */ (null), // super_read_only (set on replicas) stops SUPER too
  // MySQL 8 always reports partitions; EXPLAIN PARTITIONS is a syntax error there.
  /** @param {string} select */
  explainPartitions: (select) => `EXPLAIN ${select}`,
  sharedLock: 'FOR SHARE',
  serverConfig: ['gtid_mode=ON', 'enforce_gtid_consistency=ON', 'mysqlx=OFF', 'session_track_gtids=OWN_GTID'],
  replicaConfig: ['super_read_only=ON'],
  /** Transactions a GTID set names (uuid:1-5:7 -> 6). @param {string} set */
  transactions: (set) => [...mysqlSet(set).values()].flat().reduce((n, [lo, hi]) => n + Number(hi - lo + 1n), 0),
};

/** The statements for a server, from its VERSION() (or `mariadbd --version`) text. @param {string} version */
export const dialectSqlFor = (version) => (/mariadb/i.test(version) ? mariadb : mysql);

/**
 * MariaDB positions: one domain-server-seq per replication domain.
 * @param {string} pos
 * @returns {Map<string, { seq: bigint, text: string }>}
 */
export function mariaDomains(pos) {
  const m = new Map();
  for (const g of pos.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [domain, , seq] = g.split('-');
    if (seq !== undefined) m.set(domain, { seq: BigInt(seq), text: g });
  }
  return m;
}

/**
 * MySQL GTID sets: uuid -> [lo, hi] intervals (gtid_executed is normalised, so a wanted interval lies inside one).
 * @param {string} set
 * @returns {Map<string, Array<[bigint, bigint]>>}
 */
export function mysqlSet(set) {
  const m = new Map();
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
