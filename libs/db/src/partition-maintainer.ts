/**
 * PartitionMaintainer: keeps monthly RANGE COLUMNS(created_at) partitions on the order tables.
 * New months are carved out of the catch-all `pmax` with REORGANIZE PARTITION, ahead of time, so
 * inserts never land in pmax and a month query prunes to one partition. Idempotent: it only adds
 * months that are missing. The statements are standard on MySQL 8.4 and MariaDB 10.11.
 */
import type { DataSource } from 'typeorm';

export const PARTITIONED_TABLES = ['orders', 'order_items'] as const;

export interface PartitionInfo {
  name: string;
  /** Exclusive upper bound, 'YYYY-MM-DD' or 'MAXVALUE'. */
  lessThan: string;
  rows: number;
}

export function monthStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}
export function addMonths(d: Date, n: number): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
}
export function partitionName(month: Date): string {
  return `p${month.getUTCFullYear()}${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}
const ymd = (d: Date) => d.toISOString().slice(0, 10);

export async function listPartitions(ds: DataSource, table: string): Promise<PartitionInfo[]> {
  const rows: any[] = await ds.query(
    `SELECT PARTITION_NAME AS name, PARTITION_DESCRIPTION AS descr, TABLE_ROWS AS \`rows\`
       FROM information_schema.PARTITIONS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL
      ORDER BY PARTITION_ORDINAL_POSITION`,
    [table],
  );
  return rows.map((r) => ({
    name: r.name,
    lessThan: /MAXVALUE/i.test(r.descr) ? 'MAXVALUE' : String(r.descr).replace(/'/g, '').slice(0, 10),
    rows: Number(r.rows ?? 0),
  }));
}

/** The ALTER statements that would create every month in [from, to] missing from `table`. */
export async function planMonths(ds: DataSource, table: string, from: Date, to: Date): Promise<string[]> {
  const parts = await listPartitions(ds, table);
  const bounded = parts.filter((p) => p.lessThan !== 'MAXVALUE');
  const highest = bounded.length ? bounded[bounded.length - 1].lessThan : null;
  const wanted: Date[] = [];
  for (let m = monthStart(from); m <= to; m = addMonths(m, 1)) {
    // RANGE partitions only grow upwards: months below the current highest bound are already covered.
    if (!highest || ymd(addMonths(m, 1)) > highest) wanted.push(m);
  }
  if (wanted.length === 0) return [];
  const defs = wanted.map((m) => `PARTITION ${partitionName(m)} VALUES LESS THAN ('${ymd(addMonths(m, 1))}')`);
  return [`ALTER TABLE ${table} REORGANIZE PARTITION pmax INTO (${defs.join(', ')}, PARTITION pmax VALUES LESS THAN (MAXVALUE))`];
}

export async function ensureMonths(ds: DataSource, from: Date, to: Date): Promise<string[]> {
  const done: string[] = [];
  for (const table of PARTITIONED_TABLES) {
    for (const stmt of await planMonths(ds, table, from, to)) {
      await ds.query(stmt);
      done.push(stmt);
    }
  }
  return done;
}

export interface PartitionPolicy {
  /** Months before the current one that must have their own partition (older rows share the first). */
  monthsBack: number;
  /** Months after the current one to create ahead of time. */
  monthsAhead: number;
}

/** Keeps one shard's order tables partitioned by month. Retention and scheduling: see docs/q1a. */
export class PartitionMaintainer {
  constructor(
    private readonly ds: DataSource,
    private readonly policy: PartitionPolicy = { monthsBack: 12, monthsAhead: 3 },
  ) {}

  async ensure(now = new Date()): Promise<string[]> {
    const from = addMonths(monthStart(now), -this.policy.monthsBack);
    const to = addMonths(monthStart(now), this.policy.monthsAhead);
    return ensureMonths(this.ds, from, to);
  }
}
