/**
 * Fixtures for the resharding specs: a topology of its own (databases `<TEST_DB>_rs_<tag>` on the primary and
 * on THREE shards, shard-2 started on demand), so moving buckets never changes the map the other specs use.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';
import { bucketOf, dataSourceFor, DbNodes, migrateAll, withAccount } from '#libs/db';
import { nativeStack, TEST_DB, TEST_DB_ADMIN, testConfig, testEnv } from '#libs/testing';

export interface Topology {
  /** Overrides for startApi / testConfig: this topology's databases, no replicas (the catalog is read from the primary). */
  env: Record<string, string>;
  /** Env for a child `node dist/tools/shards.js --test` run on this topology. */
  toolEnv: Record<string, string>;
  admin: DbNodes;
  close(): Promise<void>;
}

const withDb = (raw: string, db: string) => {
  const u = new URL(raw);
  u.pathname = `/${db}`;
  return u.toString();
};

export async function reshardTopology(name: string): Promise<Topology> {
  const stack = await nativeStack();
  if (!process.env.TEST_DB_PRIMARY_URL) await stack.addShard({ quiet: true });
  const dbName = `${TEST_DB}_rs_${name}`;
  const base = testEnv();
  const shard2 = process.env.TEST_DB_SHARD_2_URL || 'mysql://mallscale_app:mallscale_app@127.0.0.1:3312/x';
  const shards = [...base.DB_SHARD_URLS.split(','), shard2].map((u) => withDb(u, dbName));
  const env = { DB_PRIMARY_URL: withDb(base.DB_PRIMARY_URL, dbName), DB_REPLICA_URLS: '', DB_SHARD_URLS: shards.join(',') };
  const config = testConfig(env);
  // A clean slate each run: drop the topology's databases (admin account), then migrate them from scratch.
  for (const u of [config.db.primary, ...config.db.shards]) {
    const ds = await dataSourceFor(withAccount(u, TEST_DB_ADMIN, ''), 1).initialize();
    try {
      await ds.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
    } finally {
      await ds.destroy();
    }
  }
  await migrateAll(config, () => undefined);
  const admin = await DbNodes.connect({ ...config.db, primary: withAccount(config.db.primary, TEST_DB_ADMIN), shards: config.db.shards.map((s) => withAccount(s, TEST_DB_ADMIN)), poolSize: 4 });
  // The default map of a three-shard migrate is bucket % 3: start from two shards, as a real cluster would.
  await admin.primary.ds.query('UPDATE shard_buckets SET shard = bucket % 2');
  const toolEnv = { TEST_DB_PRIMARY_URL: env.DB_PRIMARY_URL, TEST_DB_REPLICA_URLS: '', TEST_DB_SHARD_URLS: env.DB_SHARD_URLS };
  return { env, toolEnv, admin, close: () => admin.close() };
}

export interface ToolRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `npm run shards -- <args> --test` as a child process (the compiled tool, as `npm run` runs it). */
export function runShards(t: Topology, args: string[], env: Record<string, string> = {}): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'tools', 'shards.js'), ...args, '--test'], {
      cwd: repoRoot(),
      env: { ...process.env, ...t.toolEnv, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface ShardRow {
  shard: number;
  id: string;
  bucket: number;
  sum: string;
}

/** Every order on every shard with a checksum of its row and its items (what a byte-level diff would compare). */
export async function allOrders(db: DbNodes): Promise<ShardRow[]> {
  const out: ShardRow[] = [];
  for (const [shard, s] of db.shards.entries()) {
    const rows = await s.ds.query(
      `SELECT o.id, o.bucket, CONCAT_WS('|', o.user_id, o.status, o.total_cents, o.item_count, o.created_at,
              (SELECT GROUP_CONCAT(CONCAT_WS(':', i.line_no, i.product_id, i.quantity, i.unit_price_cents) ORDER BY i.line_no) FROM order_items i WHERE i.order_id = o.id AND i.created_at = o.created_at)) AS sum
         FROM orders o`,
    );
    for (const r of rows) out.push({ shard, id: String(r.id), bucket: Number(r.bucket), sum: String(r.sum) });
  }
  return out;
}

export async function bucketMap(db: DbNodes): Promise<number[]> {
  const map: number[] = [];
  for (const r of await db.primary.ds.query('SELECT bucket, shard FROM shard_buckets')) map[Number(r.bucket)] = Number(r.shard);
  return map;
}

export { bucketOf };
