import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DbNodes, listArchiveTables, listPartitions, maintainPartitions, PartitionMaintainer } from '#libs/db';
import { testConfig } from '#libs/testing';

// Each test maintains its own copies of the order tables (same DDL), so retention never touches the
// shared test data. Real shard, real DDL (MariaDB here; the statements are the MySQL 8.4 ones too), run
// with the DDL account's pool, as the app's scheduler and `npm run partitions` do.
let db: DbNodes;
const shard0 = () => db.ddl(db.shards[0]);
const tag = randomUUID().slice(0, 8).replace(/-/g, '');
const created: string[] = [];

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, replicas: [], poolSize: 3 });
});
afterAll(async () => {
  const ds = await shard0();
  for (const t of created) await ds.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  for (const t of await listArchiveTables(ds)) if (t.includes(tag)) await ds.query(`DROP TABLE IF EXISTS ${t}`);
  await db.close();
});

async function copyTables(name: string): Promise<[string, string]> {
  const ds = await shard0();
  const tables: [string, string] = [`pm_${tag}_${name}_o`, `pm_${tag}_${name}_i`];
  for (const [t, src] of [[tables[0], 'orders'], [tables[1], 'order_items']]) {
    await ds.query(`CREATE TABLE ${t} LIKE ${src}`);
    created.push(t);
    await ds.query(`ALTER TABLE ${t} REMOVE PARTITIONING`);
    await ds.query(`ALTER TABLE ${t} PARTITION BY RANGE COLUMNS (created_at) (PARTITION pmax VALUES LESS THAN (MAXVALUE))`);
  }
  return tables;
}

async function fillMonths(orders: string, items: string, months: string[]) {
  const ds = await shard0();
  let id = 1;
  for (const m of months) {
    for (let k = 0; k < 2; k++, id++) {
      const at = `${m}-1${k} 12:00:00.000`;
      await ds.query(`INSERT INTO ${orders} (id, user_id, bucket, status, total_cents, item_count, created_at) VALUES (?, 1, 1, 'placed', 100, 1, ?)`, [id, at]);
      await ds.query(`INSERT INTO ${items} (order_id, line_no, product_id, quantity, unit_price_cents, created_at) VALUES (?, 1, 1, 1, 100, ?)`, [id, at]);
    }
  }
}
const count = async (sql: string) => Number((await (await shard0()).query(sql))[0].n);

describe('PartitionMaintainer', () => {
  it('when it runs twice, then the second run changes nothing; retention archives exactly the months past the window', async () => {
    const ds = await shard0();
    const [o, i] = await copyTables('arch');
    const policy = { monthsBack: 3, monthsAhead: 2, retentionMonths: 3, retention: 'archive' as const, tables: [o, i], idempotencyTtlHours: 0 };
    const june = new Date(Date.UTC(2026, 5, 15));
    const m = new PartitionMaintainer(ds, policy);
    expect((await m.run(june)).length).toBe(2); // one REORGANIZE per table
    expect((await listPartitions(ds, o)).map((p) => p.name)).toEqual(['p202603', 'p202604', 'p202605', 'p202606', 'p202607', 'p202608', 'pmax']);
    expect(await m.run(june)).toEqual([]);

    await fillMonths(o, i, ['2026-03', '2026-04', '2026-05', '2026-06', '2026-07']);
    // Three months later: Mar, Apr, May leave (archived), Sep..Nov are created ahead.
    const september = new Date(Date.UTC(2026, 8, 15));
    expect(await m.plan(september)).toContain(`ALTER TABLE ${o} EXCHANGE PARTITION p202603 WITH TABLE ${o}_archive_p202603`);
    await m.run(september);
    expect((await listPartitions(ds, o)).map((p) => p.name)).toEqual(['p202606', 'p202607', 'p202608', 'p202609', 'p202610', 'p202611', 'pmax']);
    expect((await listPartitions(ds, i)).map((p) => p.name)).toEqual(['p202606', 'p202607', 'p202608', 'p202609', 'p202610', 'p202611', 'pmax']);
    for (const month of ['p202603', 'p202604', 'p202605']) {
      expect(await count(`SELECT COUNT(*) AS n FROM ${o}_archive_${month}`)).toBe(2);
      expect(await count(`SELECT COUNT(*) AS n FROM ${i}_archive_${month}`)).toBe(2);
    }
    expect(await count(`SELECT COUNT(*) AS n FROM ${o}`)).toBe(4);
    expect(await count(`SELECT COUNT(*) AS n FROM ${o} WHERE created_at < '2026-06-01'`)).toBe(0);
    expect(await m.run(september)).toEqual([]);
    expect(await m.plan(september)).toEqual([]);
  });

  it('when a run stopped between EXCHANGE and DROP, then the next run only drops the empty partition', async () => {
    const ds = await shard0();
    const [o, i] = await copyTables('crash');
    const policy = { monthsBack: 1, monthsAhead: 1, retentionMonths: 1, retention: 'archive' as const, tables: [o, i], idempotencyTtlHours: 0 };
    await new PartitionMaintainer(ds, policy).ensure(new Date(Date.UTC(2026, 0, 15)));
    await fillMonths(o, i, ['2025-12']);
    // Simulate the crash: archive made and exchanged by hand, DROP never ran.
    await ds.query(`CREATE TABLE ${o}_archive_p202512 LIKE ${o}`);
    await ds.query(`ALTER TABLE ${o}_archive_p202512 REMOVE PARTITIONING`);
    await ds.query(`ALTER TABLE ${o} EXCHANGE PARTITION p202512 WITH TABLE ${o}_archive_p202512`);
    const plan = await new PartitionMaintainer(ds, policy).plan(new Date(Date.UTC(2026, 1, 15)));
    expect(plan.filter((s) => s.startsWith(`ALTER TABLE ${o} `) && !s.includes('REORGANIZE'))).toEqual([`ALTER TABLE ${o} DROP PARTITION p202512`]);
    await new PartitionMaintainer(ds, policy).run(new Date(Date.UTC(2026, 1, 15)));
    expect(await count(`SELECT COUNT(*) AS n FROM ${o}_archive_p202512`)).toBe(2);
    expect(await count(`SELECT COUNT(*) AS n FROM ${i}_archive_p202512`)).toBe(2);
  });

  it("when retention is 'drop', then old months are dropped without archive tables", async () => {
    const ds = await shard0();
    const [o, i] = await copyTables('drop');
    const policy = { monthsBack: 2, monthsAhead: 1, retentionMonths: 2, retention: 'drop' as const, tables: [o, i], idempotencyTtlHours: 0 };
    await new PartitionMaintainer(ds, policy).run(new Date(Date.UTC(2026, 2, 15)));
    await fillMonths(o, i, ['2026-01', '2026-02', '2026-03']);
    const done = await new PartitionMaintainer(ds, policy).run(new Date(Date.UTC(2026, 4, 15)));
    expect(done).toContain(`ALTER TABLE ${o} DROP PARTITION p202601`);
    expect(done.some((s) => /EXCHANGE|CREATE TABLE/.test(s))).toBe(false);
    expect(await count(`SELECT COUNT(*) AS n FROM ${o}`)).toBe(2);
    expect((await listArchiveTables(ds)).filter((t) => t.startsWith(o))).toEqual([]);
  });

  it('when another instance holds the maintenance lock, then this one skips; a dry run executes nothing', async () => {
    const ds = await shard0();
    const [o, i] = await copyTables('lock');
    const policy = { monthsBack: 1, monthsAhead: 1, retentionMonths: 1, tables: [o, i], idempotencyTtlHours: 0 };
    const lockName = `pm_lock_${tag}`;
    const holder = db.primary.ds.createQueryRunner();
    await holder.connect();
    try {
      await holder.query('SELECT GET_LOCK(?, 0)', [lockName]);
      const skipped = await maintainPartitions(await db.ddl(db.primary), [{ name: 'shard-0', ds }], policy, { lockName });
      expect(skipped).toEqual({ ran: false, dryRun: false, shards: [] });
      const dry = await maintainPartitions(await db.ddl(db.primary), [{ name: 'shard-0', ds }], policy, { lockName, dryRun: true });
      expect(dry.shards[0].statements.length).toBe(2);
      expect((await listPartitions(ds, o)).map((p) => p.name)).toEqual(['pmax']);
      await holder.query('SELECT RELEASE_LOCK(?)', [lockName]);
      const ran = await maintainPartitions(await db.ddl(db.primary), [{ name: 'shard-0', ds }], policy, { lockName });
      expect(ran.ran).toBe(true);
      expect((await listPartitions(ds, o)).length).toBe(4);
    } finally {
      await holder.release();
    }
  });
});
