// add-shard: the third order shard (shard-2, :3312), started on demand like the others (same my.cnf, accounts
// and grants); the command line then runs the app's migrate with three DB_SHARD_URLS (schema, shard_identity = 2,
// partitions). Once its datadir exists, status, kill/start, cap and down know it too.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from './env.mjs';
import { binaries } from './install.mjs';
import { sql } from './clients.mjs';
import { APP_ACCOUNTS, ensureUsers } from './accounts.mjs';
import { applyEnvCaps } from './caps.mjs';
import { addedShards, addedShardsInUse, nodes, primaryNode, startOne } from './nodes.mjs';
import { withLock } from './procs.mjs';
import { nodeRow } from './status.mjs';

/** Start shard-2 (idempotent) with the app's accounts; returns its status row. */
export async function addShard(opts = {}) {
  const log = opts.quiet ? () => {} : opts.log ?? console.log;
  const n = addedShards[0];
  binaries();
  return withLock(async () => {
    await startOne(n, log);
    await ensureUsers(n);
    applyEnvCaps([...nodes, ...addedShardsInUse()]);
    return nodeRow(n);
  });
}

/** The app's shard URLs with the added shard (what DB_SHARD_URLS becomes). */
export function shardUrls() {
  const { user, password } = APP_ACCOUNTS.app;
  return [...nodes.filter((n) => n.role === 'shard'), ...addedShards].map((n) => `mysql://${user}:${password}@127.0.0.1:${n.port}/mallscale`).join(',');
}

/**
 * The app's database gets the shard's schema, identity row (2) and partitions, once the catalog has its bucket
 * map (a stack never migrated would get a three-shard default map: migrate with two shards first). Returns the
 * migrate's exit status, or null when the catalog has no bucket map yet.
 */
export async function migrateAddedShard() {
  const mapped = await sql(primaryNode(), 'SELECT COUNT(*) FROM mallscale.shard_buckets').catch(() => '0');
  if (mapped === '0') return null;
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'run.mjs'), 'tools/migrate.js'], { stdio: 'inherit', cwd: REPO, env: { ...process.env, DB_SHARD_URLS: shardUrls() } });
  return r.status;
}
