/**
 * `npm run migrate [-- --test]`: applies the catalog migrations to the primary and the shard migrations
 * to every shard, seeds the bucket map, then creates the monthly order partitions (PartitionMaintainer)
 * so the next months exist before the first order arrives. `--test` targets the test databases.
 */
import { loadConfig } from '#libs/core';
import { migrateAll } from '#libs/db';
import { testConfig } from '#libs/testing';

const test = process.argv.includes('--test');
const config = test ? testConfig() : loadConfig();
migrateAll(config, test ? () => undefined : console.log).then(
  () => console.log(`migrations: ${test ? 'test databases' : 'databases'} up to date`),
  (e) => {
    console.error(`migrate failed: ${e.message}`);
    process.exit(1);
  },
);
