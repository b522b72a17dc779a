/**
 * Two numbers the console charts that live in the databases, not in this process, put on /metrics as
 * gauges read at scrape time (so GET /metrics and the console's stream show the same values):
 *  - orders_partition_rows{shard,partition}: rows per monthly partition of each shard's orders table
 *    (INFORMATION_SCHEMA.PARTITIONS TABLE_ROWS: InnoDB's estimate, what the partition maintainer lists);
 *  - shorts_jobs_finished_last_hour{status}: shorts jobs that reached DONE / FAILED in the last hour
 *    (the shorts_jobs rows, My page's source of truth), i.e. jobs/hour.
 * A node that does not answer leaves its series out of that scrape instead of failing /metrics. Both read
 * through the small DDL-account pool, never the app's account: tests count the app account's SELECTs on the
 * server, and a scrape must not add to them.
 */
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { Metrics } from '#libs/core';
import { DbNodes, listPartitions } from '#libs/db';

@Injectable()
export class TableGauges implements OnModuleInit {
  constructor(
    private readonly metrics: Metrics,
    private readonly db: DbNodes,
  ) {}

  onModuleInit(): void {
    const registers = [this.metrics.registry];
    if (this.metrics.registry.getSingleMetric('orders_partition_rows')) return;
    const db = this.db;
    new Gauge({
      name: 'orders_partition_rows',
      help: "Rows per monthly partition of each shard's orders table (INFORMATION_SCHEMA.PARTITIONS TABLE_ROWS, an InnoDB estimate)",
      labelNames: ['shard', 'partition'],
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          db.shards.map(async (s) => {
            const parts = await db
              .ddl(s)
              .then((ds) => listPartitions(ds, 'orders'))
              .catch(() => []);
            for (const p of parts) this.set({ shard: s.name, partition: p.name }, p.rows);
          }),
        );
      },
    });
    new Gauge({
      name: 'shorts_jobs_finished_last_hour',
      help: 'Shorts jobs that reached DONE or FAILED in the last hour (shorts_jobs rows): jobs/hour',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = (await db
          .ddl(db.primary)
          .then((ds) => ds.query("SELECT status, COUNT(*) AS n FROM shorts_jobs WHERE status IN ('DONE', 'FAILED') AND updated_at >= NOW(3) - INTERVAL 1 HOUR GROUP BY status"))
          .catch(() => null)) as { status: string; n: string }[] | null;
        if (!rows) return;
        this.set({ status: 'DONE' }, 0);
        this.set({ status: 'FAILED' }, 0);
        for (const r of rows) this.set({ status: r.status }, Number(r.n));
      },
    });
  }
}
