/**
 * `npm run partitions -- [--dry-run]`
 *
 * Runs the PartitionMaintainer on every shard, once: creates the next PARTITION_MONTHS_AHEAD months
 * (splitting pmax), then applies retention (PARTITION_RETENTION=archive|drop|off, keeping
 * PARTITION_RETENTION_MONTHS whole months). Takes the same named lock as the API's scheduler, so it is
 * safe to run from cron next to running instances. --dry-run prints the statements without running them.
 */
import { loadConfig } from '#libs/core';
import { DbNodes, ddlTopology, maintainPartitions } from '#libs/db';
import { parseCli } from './cli.js';

const { values } = parseCli('usage: npm run partitions -- [--dry-run]', { 'dry-run': { type: 'boolean', default: false } });
const dryRun = values['dry-run'];
const config = loadConfig();

async function main() {
  const db = await DbNodes.connect({ ...ddlTopology(config.db), poolSize: 2 });
  try {
    const p = config.partitions;
    console.log(`partitions: ${p.monthsAhead} months ahead, ${p.monthsBack} back, retention ${p.retention}${p.retention === 'off' ? '' : ` after ${p.retentionMonths} months`}${dryRun ? ' (dry run)' : ''}`);
    const r = await maintainPartitions(db.primary.ds, db.shards, p, { dryRun });
    if (!r.ran) {
      console.log('partitions: another instance holds the maintenance lock; nothing done');
      return;
    }
    for (const s of r.shards) {
      if (!s.statements.length) console.log(`${s.name}: up to date`);
      for (const st of s.statements) console.log(`${s.name}: ${dryRun ? 'would run ' : ''}${st}`);
    }
  } finally {
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`partitions failed: ${e.message}`);
    process.exit(1);
  },
);
