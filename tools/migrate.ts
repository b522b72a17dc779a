/**
 * `npm run migrate`: applies the catalog migrations to the primary and the shard migrations to every
 * shard, seeds the bucket map, then creates the monthly order partitions (PartitionMaintainer) so the
 * next months exist before the first order arrives.
 */
import { loadConfig, type AppConfig } from '#libs/core';
import { DbNodes, migrate, OrderShardRouter, PartitionMaintainer } from '#libs/db';

export async function migrateAll(config: AppConfig, log: (m: string) => void = console.log): Promise<void> {
  await migrate(config.db.primary, 'catalog', log);
  for (const shard of config.db.shards) await migrate(shard, 'shard', log);
  const nodes = await DbNodes.connect({ ...config.db, replicas: [], poolSize: 2 });
  try {
    await new OrderShardRouter(nodes.primary.ds, nodes.shards.length).ensureBucketMap();
    for (const shard of nodes.shards) {
      const done = await new PartitionMaintainer(shard.ds).ensure();
      for (const stmt of done) log(`${shard.name}: ${stmt.slice(0, 120)}${stmt.length > 120 ? '…' : ''}`);
    }
  } finally {
    await nodes.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  migrateAll(loadConfig()).then(
    () => console.log('migrations: up to date'),
    (e) => {
      console.error(`migrate failed: ${e.message}`);
      process.exit(1);
    },
  );
}
