/**
 * Brings every database of the topology to the current schema: catalog migrations on the primary,
 * shard migrations on every shard, the default bucket map, and the monthly order partitions.
 */
import type { AppConfig } from '#libs/core';
import { DbNodes, ddlTopology } from './db-nodes.js';
import { migrate } from './migrator.js';
import { OrderShardRouter } from './order-shard-router.js';
import { PartitionMaintainer } from './partition-maintainer.js';

/** Everything here runs with the DDL account (config.db.ddl), never the app's. */
export async function migrateAll(config: AppConfig, log: (m: string) => void = console.log): Promise<void> {
  const db = ddlTopology(config.db);
  await migrate(db.primary, 'catalog', log);
  for (const [i, shard] of db.shards.entries()) await migrate(shard, 'shard', log, { shardIndex: i });
  const nodes = await DbNodes.connect({ ...db, poolSize: 2 });
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

