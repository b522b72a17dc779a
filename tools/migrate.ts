/**
 * `npm run migrate`: applies the catalog migrations to the primary and the shard migrations to every
 * shard, seeds the bucket map, then creates the monthly order partitions (PartitionMaintainer) so the next
 * months exist before the first order arrives. The databases are the ones the config names (the test
 * harness runs it with the test environment, NODE_ENV=test: quiet, test databases).
 */
import { loadConfig } from '#libs/core';
import { migrateAll } from '#libs/db';
import { parseCli } from './cli.js';

parseCli('usage: npm run migrate', {});
const config = loadConfig();
const test = config.env === 'test';
migrateAll(config, test ? () => undefined : console.log).then(
  () => console.log(`migrations: ${test ? 'test databases' : 'databases'} up to date`),
  (e) => {
    console.error(`migrate failed: ${e.message}`);
    process.exit(1);
  },
);
