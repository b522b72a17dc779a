/**
 * DbNodes: one TypeORM DataSource (a mysql2 pool) per physical database node of the topology:
 * the catalog primary, its replicas, and the order shards. Which node a query goes to is decided by
 * ReplicaRouter (catalog reads/writes) and OrderShardRouter (orders); this class only owns the pools,
 * knows each node's dialect, and closes everything on shutdown.
 */
import { DataSource } from 'typeorm';
import type { DbUrl } from '#libs/core';
import { detectDialect, type SqlDialect } from './dialect.js';

export type NodeRole = 'primary' | 'replica' | 'shard';

export interface DbNode {
  name: string;
  role: NodeRole;
  url: DbUrl;
  ds: DataSource;
  dialect: SqlDialect;
}

export interface DbNodesOptions {
  primary: DbUrl;
  replicas: DbUrl[];
  shards: DbUrl[];
  poolSize: number;
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
  readonly primary: DbNode;
  readonly replicas: DbNode[];
  readonly shards: DbNode[];

  private constructor(primary: DbNode, replicas: DbNode[], shards: DbNode[]) {
    this.primary = primary;
    this.replicas = replicas;
    this.shards = shards;
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
      return { name, role, url, ds, dialect };
    };
    const primary = await open('primary', 'primary', o.primary, true);
    const replicas = await Promise.all(o.replicas.map((u, i) => open(`replica-${i + 1}`, 'replica', u, false)));
    const shards = await Promise.all(o.shards.map((u, i) => open(`shard-${i}`, 'shard', u, true)));
    return new DbNodes(primary, replicas, shards);
  }

  all(): DbNode[] {
    return [this.primary, ...this.replicas, ...this.shards];
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
    await Promise.all(this.all().map((n) => (n.ds.isInitialized ? n.ds.destroy().catch(() => undefined) : undefined)));
  }
}

async function guessDialect(_url: DbUrl): Promise<SqlDialect> {
  // Unknown until the node answers; MariaDB is what the native stack runs. Re-detected on connect.
  const { MariaDbDialect } = await import('./dialect.js');
  return new MariaDbDialect('unknown');
}
