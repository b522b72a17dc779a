/**
 * Brings every database of the topology to the current schema: catalog migrations on the primary,
 * shard migrations on every shard, the default bucket map, and the monthly order partitions.
 */
import type { AppConfig } from '#libs/core';
import { DbNodes } from './db-nodes.js';
import { migrate } from './migrator.js';
import { OrderShardRouter } from './order-shard-router.js';
import { PartitionMaintainer } from './partition-maintainer.js';

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

