/**
 * PartitionMaintainer: keeps monthly RANGE COLUMNS(created_at) partitions on the order tables.
 *
 * Ahead: new months are carved out of the catch-all `pmax` with REORGANIZE PARTITION before they begin,
 * so inserts never land in pmax (splitting an empty pmax is a metadata change; splitting a full one
 * copies rows) and a month query prunes to one partition.
 * Behind (retention): months older than the retention window leave the table as whole partitions:
 * `archive` swaps the partition with an empty, unpartitioned archive table (EXCHANGE PARTITION: a
 * metadata swap, no row copied) then drops the now-empty partition; `drop` drops it. Either is one
 * short DDL instead of a DELETE of millions of rows (undo, binlog, replica lag: see docs/q1a).
 * The trade-off: retention granularity is a whole month, and DDL takes a brief metadata lock.
 *
 * Idempotent: every step is planned from the current state (information_schema), so a second run plans
 * nothing, and a run interrupted between EXCHANGE and DROP finishes on the next one. Statements are the
 * same on MySQL 8.4 and MariaDB 10.11. `maintainPartitions` runs it on every shard under a named lock on
 * the catalog primary (GET_LOCK), so when several API instances schedule it only one does the work; the
 * lock is tied to the connection, so a crashed holder frees it.
 */
import type { DataSource } from 'typeorm';
import { affectedRows } from './sql-results.js';

export const PARTITIONED_TABLES = ['orders', 'order_items'] as const;
export const PARTITION_LOCK = 'mallscale_partition_maintenance';

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
/** The archive table a retired month of `table` is exchanged into: orders_archive_p202401. */
export function archiveTableName(table: string, partition: string): string {
  return `${table}_archive_${partition}`;
}
const ymd = (d: Date) => d.toISOString().slice(0, 10);
const ident = (name: string) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`unsafe identifier ${name}`);
  return name;
};

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

/** The archive tables on this node, e.g. ['orders_archive_p202401', …]. */
export async function listArchiveTables(ds: DataSource): Promise<string[]> {
  const rows: any[] = await ds.query(
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '%\\_archive\\_p%' ORDER BY TABLE_NAME`,
  );
  return rows.map((r) => String(r.name));
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
  return [`ALTER TABLE ${ident(table)} REORGANIZE PARTITION pmax INTO (${defs.join(', ')}, PARTITION pmax VALUES LESS THAN (MAXVALUE))`];
}

export async function ensureMonths(ds: DataSource, from: Date, to: Date, tables: readonly string[] = PARTITIONED_TABLES): Promise<string[]> {
  const done: string[] = [];
  for (const table of tables) {
    for (const stmt of await planMonths(ds, table, from, to)) {
      await ds.query(stmt);
      done.push(stmt);
    }
  }
  return done;
}

async function tableExists(ds: DataSource, table: string): Promise<boolean> {
  const rows = await ds.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table]);
  return rows.length > 0;
}
async function hasRows(ds: DataSource, from: string): Promise<boolean> {
  return (await ds.query(`SELECT 1 FROM ${from} LIMIT 1`)).length > 0;
}

/**
 * The statements that retire every month of `table` whose upper bound is at or before `cutoff`.
 * Planned from the current state so that re-running after a crash between EXCHANGE and DROP only drops.
 */
export async function planRetention(ds: DataSource, table: string, cutoff: Date, mode: RetentionMode): Promise<string[]> {
  if (mode === 'off') return [];
  const old = (await listPartitions(ds, table)).filter((p) => p.lessThan !== 'MAXVALUE' && p.lessThan <= ymd(cutoff));
  const out: string[] = [];
  for (const p of old) {
    const t = ident(table);
    const part = ident(p.name);
    if (mode === 'archive') {
      const archive = ident(archiveTableName(table, p.name));
      const partitionHasRows = await hasRows(ds, `${t} PARTITION (${part})`);
      if (!(await tableExists(ds, archive))) {
        out.push(`CREATE TABLE ${archive} LIKE ${t}`, `ALTER TABLE ${archive} REMOVE PARTITIONING`);
        if (partitionHasRows) out.push(`ALTER TABLE ${t} EXCHANGE PARTITION ${part} WITH TABLE ${archive}`);
      } else if (partitionHasRows) {
        // Both hold rows: exchanging would swap the archive back in. Refuse; a human decides.
        if (await hasRows(ds, archive)) throw new Error(`${archive} and ${t} PARTITION (${part}) both hold rows; refusing to exchange`);
        out.push(`ALTER TABLE ${t} EXCHANGE PARTITION ${part} WITH TABLE ${archive}`);
      }
    }
    out.push(`ALTER TABLE ${t} DROP PARTITION ${part}`);
  }
  return out;
}

export type RetentionMode = 'off' | 'archive' | 'drop';

export interface PartitionPolicy {
  /** Months before the current one that must have their own partition (older rows share the first). */
  monthsBack: number;
  /** Months after the current one to create ahead of time. */
  monthsAhead: number;
  /** Whole months kept before the current one; older months are archived or dropped (default: 24). */
  retentionMonths?: number;
  /** What happens to months past retention (default: 'archive'). */
  retention?: RetentionMode;
  /** The tables to maintain (default: orders, order_items; tests pass their own copies). */
  tables?: readonly string[];
  /** Delete idempotency keys older than this many hours (default 24; 0 = never). */
  idempotencyTtlHours?: number;
}

export const DEFAULT_PARTITION_POLICY: Required<Omit<PartitionPolicy, 'tables'>> = {
  monthsBack: 12,
  monthsAhead: 3,
  retentionMonths: 24,
  retention: 'archive',
  idempotencyTtlHours: 24,
};

/** Keeps one shard's order tables partitioned by month, ahead and behind. */
export class PartitionMaintainer {
  private readonly policy: Required<PartitionPolicy>;

  constructor(
    private readonly ds: DataSource,
    policy: Partial<PartitionPolicy> = {},
  ) {
    this.policy = { ...DEFAULT_PARTITION_POLICY, tables: PARTITIONED_TABLES, ...policy };
    if (this.policy.retention !== 'off' && this.policy.retentionMonths < this.policy.monthsBack) {
      // Otherwise ensure() would keep splitting months out of pmax... below the bound retention just removed.
      throw new Error(`retentionMonths (${this.policy.retentionMonths}) must be >= monthsBack (${this.policy.monthsBack})`);
    }
  }

  /** Creates the missing months in [now - monthsBack, now + monthsAhead]. */
  async ensure(now = new Date()): Promise<string[]> {
    const from = addMonths(monthStart(now), -this.policy.monthsBack);
    const to = addMonths(monthStart(now), this.policy.monthsAhead);
    return ensureMonths(this.ds, from, to, this.policy.tables);
  }

  /** The first month kept: months ending on or before it are retired. */
  retentionCutoff(now = new Date()): Date {
    return addMonths(monthStart(now), -this.policy.retentionMonths);
  }

  /** Every statement a run would execute now (ahead, then behind), without executing any. */
  async plan(now = new Date()): Promise<string[]> {
    const from = addMonths(monthStart(now), -this.policy.monthsBack);
    const to = addMonths(monthStart(now), this.policy.monthsAhead);
    const out: string[] = [];
    for (const t of this.policy.tables) out.push(...(await planMonths(this.ds, t, from, to)));
    for (const t of this.policy.tables) out.push(...(await planRetention(this.ds, t, this.retentionCutoff(now), this.policy.retention)));
    return out;
  }

  /** Archives or drops the months past retention. Returns the executed statements. */
  async retain(now = new Date()): Promise<string[]> {
    const done: string[] = [];
    for (const t of this.policy.tables) {
      for (const stmt of await planRetention(this.ds, t, this.retentionCutoff(now), this.policy.retention)) {
        await this.ds.query(stmt);
        done.push(stmt);
      }
    }
    return done;
  }

  async purgeIdempotencyKeys(now = new Date()): Promise<number> {
    if (!this.policy.idempotencyTtlHours || !(await tableExists(this.ds, 'idempotency_keys'))) return 0;
    const before = new Date(now.getTime() - this.policy.idempotencyTtlHours * 3600_000);
    let total = 0;
    for (;;) {
      const res = await this.ds.query('DELETE FROM idempotency_keys WHERE created_at < ? LIMIT 5000', [before]);
      const n = affectedRows(res);
      total += n;
      if (n < 5000) return total;
    }
  }

  /** One full run: months ahead, retention behind, old idempotency keys. */
  async run(now = new Date()): Promise<string[]> {
    const done = [...(await this.ensure(now)), ...(await this.retain(now))];
    await this.purgeIdempotencyKeys(now);
    return done;
  }
}

export interface MaintenanceResult {
  /** false when another instance held the lock. */
  ran: boolean;
  dryRun: boolean;
  shards: { name: string; statements: string[] }[];
}

/**
 * Maintains every shard under one named lock on the catalog primary. With `dryRun`, plans only (no lock,
 * nothing executed). A busy lock is not an error: another instance is doing the same work.
 */
export async function maintainPartitions(
  catalog: DataSource,
  shards: { name: string; ds: DataSource }[],
  policy: Partial<PartitionPolicy> = {},
  opts: { dryRun?: boolean; now?: Date; lockName?: string } = {},
): Promise<MaintenanceResult> {
  const now = opts.now ?? new Date();
  if (opts.dryRun) {
    const out = [];
    for (const s of shards) out.push({ name: s.name, statements: await new PartitionMaintainer(s.ds, policy).plan(now) });
    return { ran: true, dryRun: true, shards: out };
  }
  const lock = opts.lockName ?? PARTITION_LOCK;
  const qr = catalog.createQueryRunner();
  await qr.connect();
  try {
    const [row] = await qr.query('SELECT GET_LOCK(?, 0) AS ok', [lock]);
    if (Number(row?.ok) !== 1) return { ran: false, dryRun: false, shards: [] };
    try {
      const out = [];
      for (const s of shards) out.push({ name: s.name, statements: await new PartitionMaintainer(s.ds, policy).run(now) });
      return { ran: true, dryRun: false, shards: out };
    } finally {
      await qr.query('SELECT RELEASE_LOCK(?)', [lock]);
    }
  } finally {
    await qr.release();
  }
}
