/**
 * DbNodes: one TypeORM DataSource (a mysql2 pool) per physical database node of the topology:
 * the catalog primary, its replicas, and the order shards. Which node a query goes to is decided by
 * ReplicaRouter (catalog reads/writes) and OrderShardRouter (orders); this class only owns the pools,
 * knows each node's dialect, and closes everything on shutdown.
 * The pools carry the app's DML-only account. DDL (migrations, partition maintenance, attribute promotion)
 * goes through `ddl(node)`, a separate small pool with the DDL account, opened on first use; the replica
 * monitor connects with the monitor account (`monitorUrl`, no schema).
 */
import { DataSource } from 'typeorm';
import type { DbCredentials, DbUrl } from '#libs/core';
import { detectDialect, type SqlDialect } from './dialect.js';

export type NodeRole = 'primary' | 'replica' | 'shard';

export interface DbNode {
  name: string;
  role: NodeRole;
  url: DbUrl;
  /** The same node with the DDL account. */
  ddlUrl: DbUrl;
  /** The same node with the monitor account and no default schema (it has no privilege on any). */
  monitorUrl: DbUrl;
  ds: DataSource;
  dialect: SqlDialect;
}

export interface DbNodesOptions {
  primary: DbUrl;
  replicas: DbUrl[];
  shards: DbUrl[];
  poolSize: number;
  /** Accounts for DDL and monitoring on the same hosts; without them, the URLs' own account is used. */
  ddl?: DbCredentials;
  monitor?: DbCredentials;
  /** 'galera': primary + replicas are the nodes of one Galera cluster (galera-1..n); any one answering is enough. */
  catalog?: 'replicated' | 'galera';
}

/** `url` with another account (and optionally another default schema). */
export function withAccount(url: DbUrl, who: DbCredentials, database = url.database): DbUrl {
  const u = new URL(url.url);
  u.username = encodeURIComponent(who.user);
  u.password = encodeURIComponent(who.password);
  u.pathname = `/${database}`;
  return { ...url, url: u.toString(), user: who.user, password: who.password, database };
}

/** The DDL account's view of a topology: primary and shards (replicas follow through replication). */
export function ddlTopology<T extends DbNodesOptions>(o: T): T {
  if (!o.ddl) return { ...o, replicas: [] };
  const ddl = o.ddl;
  return { ...o, primary: withAccount(o.primary, ddl), replicas: [], shards: o.shards.map((s) => withAccount(s, ddl)) };
}

export function dataSourceFor(url: DbUrl, poolSize: number, extra: Record<string, unknown> = {}): DataSource {
  return new DataSource({
    type: 'mysql',
    host: url.host,
    port: url.port,
    username: url.user,
    password: url.password,
    database: url.database,
    poolSize,
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    // BIGINT ids (order ids use all 63 bits) must never pass through a JS number.
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectTimeout: 3000,
    // TypeORM's own logger would print failed queries with their bound values (password hashes, e-mails);
    // query errors reach the app's logger instead, through the error filter, values redacted (safeErr).
    logging: false,
    extra: { connectionLimit: poolSize, enableKeepAlive: true, maxIdle: poolSize, ...extra },
  });
}

export class DbNodes {
  /** The catalog node that takes writes now: the configured primary until a promotion is seen (setPrimary). */
  primary: DbNode;
  /** The other catalog nodes, in configuration order. */
  replicas: DbNode[];
  readonly shards: DbNode[];
  /** Every catalog node in configuration order (DB_PRIMARY_URL first, then DB_REPLICA_URLS): fixed, unlike the roles. */
  readonly catalog: readonly DbNode[];
  private readonly ddlPools = new Map<string, Promise<DataSource>>();

  private constructor(primary: DbNode, replicas: DbNode[], shards: DbNode[]) {
    this.primary = primary;
    this.replicas = replicas;
    this.shards = shards;
    this.catalog = [primary, ...replicas];
  }

  /**
   * A switchover or failover made `node` (one of `catalog`) the writable one: writes and the primary
   * fallback go there from now on, every other catalog node serves reads. Names and pools stay with their hosts.
   */
  setPrimary(node: DbNode): void {
    if (!this.catalog.includes(node)) throw new Error(`${node.name} is not a catalog node`);
    for (const n of this.catalog) n.role = n === node ? 'primary' : 'replica';
    this.primary = node;
    this.replicas = this.catalog.filter((n) => n !== node);
  }

  /** Connects every node. The primary and shards must answer; a replica that is down is kept and retried by the health monitor. */
  static async connect(o: DbNodesOptions): Promise<DbNodes> {
    const open = async (name: string, role: NodeRole, url: DbUrl, required: boolean): Promise<DbNode> => {
      const ds = dataSourceFor(url, o.poolSize);
      try {
        await ds.initialize();
      } catch (e) {
        if (required) throw new Error(`cannot connect to ${name} at ${url.host}:${url.port}/${url.database}: ${(e as Error).message}`);
      }
      const dialect = ds.isInitialized ? await detectDialect(ds) : await guessDialect(url);
      const ddlUrl = o.ddl ? withAccount(url, o.ddl) : url;
      const monitorUrl = withAccount(url, o.monitor ?? url, '');
      return { name, role, url, ddlUrl, monitorUrl, ds, dialect };
    };
    const galera = o.catalog === 'galera';
    // Galera: every node can take writes, so start on the first that answers (GaleraMonitor moves writes later).
    const primary = await open(galera ? 'galera-1' : 'primary', 'primary', o.primary, !galera);
    const replicas = await Promise.all(o.replicas.map((u, i) => open(galera ? `galera-${i + 2}` : `replica-${i + 1}`, 'replica', u, false)));
    const shards = await Promise.all(o.shards.map((u, i) => open(`shard-${i}`, 'shard', u, true)));
    const nodes = new DbNodes(primary, replicas, shards);
    if (galera && !primary.ds.isInitialized) {
      const live = replicas.find((n) => n.ds.isInitialized);
      if (!live) {
        await nodes.close();
        throw new Error(`cannot connect to any node of DB_GALERA_URLS (${[o.primary, ...o.replicas].map((u) => `${u.host}:${u.port}`).join(', ')})`);
      }
      nodes.setPrimary(live);
    }
    try {
      await verifyShardIdentities(nodes.shards);
    } catch (e) {
      await nodes.close();
      throw e;
    }
    return nodes;
  }

  /** A small pool with the DDL account on `node`, opened on first use; never the app's pool. */
  ddl(node: DbNode): Promise<DataSource> {
    let pool = this.ddlPools.get(node.name);
    if (!pool) {
      const ds = dataSourceFor(node.ddlUrl, 2);
      pool = ds.initialize();
      this.ddlPools.set(node.name, pool);
      pool.catch(() => this.ddlPools.delete(node.name));
    }
    return pool;
  }

  all(): DbNode[] {
    return [...this.catalog, ...this.shards];
  }

  /** (Re)initialise a replica's pool if it was down at start. */
  async ensureConnected(node: DbNode): Promise<boolean> {
    if (node.ds.isInitialized) return true;
    try {
      await node.ds.initialize();
      node.dialect = await detectDialect(node.ds);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const ddl = [...this.ddlPools.values()].map((p) => p.then((ds) => ds.destroy()).catch(() => undefined));
    this.ddlPools.clear();
    await Promise.all([...ddl, ...this.all().map((n) => (n.ds.isInitialized ? n.ds.destroy().catch(() => undefined) : undefined))]);
  }
}

/**
 * Each shard records its own position in DB_SHARD_URLS on first migrate (shard_identity). A list in another
 * order would route users' orders to another user's shard, so start-up stops instead.
 */
export async function verifyShardIdentities(shards: DbNode[]): Promise<void> {
  for (const [i, shard] of shards.entries()) {
    const where = `${shard.url.host}:${shard.url.port}/${shard.url.database}`;
    let rows: { shard: number }[];
    try {
      rows = await shard.ds.query('SELECT shard FROM shard_identity WHERE id = 1');
    } catch (e) {
      if ((e as { errno?: number }).errno !== 1146) throw e;
      rows = [];
    }
    if (!rows.length) throw new Error(`DB_SHARD_URLS[${i}] (${where}) has no shard identity yet: run the migrations (npm run migrate) before starting`);
    const actual = Number(rows[0].shard);
    if (actual !== i) {
      throw new Error(`DB_SHARD_URLS is in the wrong order: DB_SHARD_URLS[${i}] (${where}) is shard-${actual}, not shard-${i}`);
    }
  }
}

async function guessDialect(_url: DbUrl): Promise<SqlDialect> {
  // Unknown until the node answers; MariaDB is what the native stack runs. Re-detected on connect.
  const { MariaDbDialect } = await import('./dialect.js');
  return new MariaDbDialect('unknown');
}
