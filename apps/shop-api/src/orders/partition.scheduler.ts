/**
 * PartitionScheduler: runs the PartitionMaintainer on every shard on a timer in every API instance;
 * the GET_LOCK inside maintainPartitions makes exactly one of them do the work each round. Off when
 * PARTITION_MAINTENANCE_INTERVAL_S=0 (then run `npm run partitions` from cron instead).
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, BackgroundLoop, Settings, type Logger } from '#libs/core';
import { DbNodes, maintainPartitions, type MaintenanceResult } from '#libs/db';

@Injectable()
export class PartitionScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly db: DbNodes,
    private readonly config: Settings,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.loop = new BackgroundLoop('partition maintenance', () => this.runOnce(), log);
  }

  onApplicationBootstrap(): void {
    const every = this.config.partitions.intervalSeconds * 1000;
    // First round after a jittered delay (migrate already created the months), then every interval.
    this.loop.start({ everyMs: every, firstDelayMs: Math.min(every, 30_000 + Math.floor(Math.random() * 30_000)) });
  }

  async runOnce(opts: { dryRun?: boolean; now?: Date } = {}): Promise<MaintenanceResult> {
    const p = this.config.partitions;
    // DDL (REORGANIZE/EXCHANGE/DROP PARTITION) runs with the DDL account's own pools, never the app's.
    const catalog = await this.db.ddl(this.db.primary);
    const shards = await Promise.all(this.db.shards.map(async (s) => ({ name: s.name, ds: await this.db.ddl(s) })));
    const result = await maintainPartitions(catalog, shards, { monthsAhead: p.monthsAhead, monthsBack: p.monthsBack, retentionMonths: p.retentionMonths, retention: p.retention }, opts);
    const statements = result.shards.flatMap((s) => s.statements.map((st) => `${s.name}: ${st}`));
    if (statements.length) this.log.info({ statements }, 'partition maintenance');
    return result;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loop.stop();
  }
}
