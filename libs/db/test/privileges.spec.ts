/**
 * Least privilege on the real servers: the accounts the app is configured with (testConfig = what
 * InfraModule connects with) can do what the app needs and nothing else. Fixture tables are created and
 * dropped with the harness's admin account, so a refusal that does not happen cannot hurt real tables.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { loadConfig, parseDbUrl } from '#libs/core';
import { dataSourceFor, DbNodes, ddlTopology, ReplicaMonitor, withAccount } from '#libs/db';
import { testAdminConfig, testConfig } from '#libs/testing';

/** The server's error number for a refused statement (or 0 when it ran). */
async function errnoOf(ds: DataSource, sql: string): Promise<number> {
  try {
    await ds.query(sql);
    return 0;
  } catch (e) {
    return Number((e as { errno?: number }).errno ?? -1);
  }
}

// 1142 table command denied, 1044/1045 database access denied, 1227 needs a privilege (CREATE USER, SUPER),
// 1410/1044 not allowed to grant, 1143 column command denied.
const DENIED = [1044, 1045, 1142, 1143, 1227, 1410];

let db: DbNodes;
let admin: DbNodes;
const probe = `priv_probe_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 2 });
  admin = await DbNodes.connect({ ...testAdminConfig().db, replicas: [], poolSize: 2 });
  for (const n of [admin.primary, ...admin.shards]) await n.ds.query(`CREATE TABLE ${probe} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB`);
});

afterAll(async () => {
  for (const n of [admin.primary, ...admin.shards]) await n.ds.query(`DROP TABLE IF EXISTS ${probe}`);
  await Promise.all([db.close(), admin.close()]);
});

describe('least-privilege database accounts', () => {
  it("the API's database account cannot run DDL (CREATE/DROP/ALTER are refused)", async () => {
    for (const node of [db.primary, ...db.shards]) {
      // It is the app's DML account, and DML works.
      const [{ who }] = await node.ds.query('SELECT CURRENT_USER() AS who');
      expect(who).toBe(`${testConfig().db.primary.user}@%`);
      await node.ds.query(`INSERT INTO ${probe} (id, v) VALUES (1, 1)`);
      await node.ds.query(`UPDATE ${probe} SET v = 2 WHERE id = 1`);
      expect(await node.ds.query(`SELECT v FROM ${probe}`)).toEqual([{ v: 2 }]);
      await node.ds.query(`DELETE FROM ${probe} WHERE id = 1`);

      expect(DENIED).toContain(await errnoOf(node.ds, `CREATE TABLE ${probe}_new (id INT PRIMARY KEY)`));
      expect(DENIED).toContain(await errnoOf(node.ds, `ALTER TABLE ${probe} ADD COLUMN w INT`));
      expect(DENIED).toContain(await errnoOf(node.ds, `CREATE INDEX ix_v ON ${probe} (v)`));
      expect(DENIED).toContain(await errnoOf(node.ds, `TRUNCATE TABLE ${probe}`));
      expect(DENIED).toContain(await errnoOf(node.ds, `DROP TABLE ${probe}`));
      expect(DENIED).toContain(await errnoOf(node.ds, `CREATE DATABASE mallscale_priv_${randomUUID().slice(0, 8)}`));
    }
    // The fixture table is still there, unchanged.
    const cols: unknown[] = await admin.primary.ds.query(`SHOW COLUMNS FROM ${probe}`);
    expect(cols).toHaveLength(2);
  });

  it("the API's account cannot read mysql.user or grant privileges", async () => {
    const app = testConfig().db.primary.user;
    for (const node of [db.primary, ...db.shards]) {
      expect(DENIED).toContain(await errnoOf(node.ds, 'SELECT user, host FROM mysql.user'));
      expect(DENIED).toContain(await errnoOf(node.ds, `GRANT ALL ON *.* TO '${app}'@'%'`));
      expect(DENIED).toContain(await errnoOf(node.ds, `GRANT DROP ON \`${node.url.database}\`.* TO '${app}'@'%'`));
      expect(DENIED).toContain(await errnoOf(node.ds, `CREATE USER 'priv_probe_${randomUUID().slice(0, 8)}'@'%' IDENTIFIED BY 'x'`));
      expect(DENIED).toContain(await errnoOf(node.ds, 'SET GLOBAL max_connections = 1'));
    }
    const [{ grants }] = await admin.primary.ds.query(`SELECT COUNT(*) AS grants FROM mysql.user WHERE user = ? AND Grant_priv = 'Y'`, [app]);
    expect(Number(grants)).toBe(0);
  });

  it('the monitor account cannot read application tables', async () => {
    const replica = db.replicas[0];
    for (const node of [replica, db.primary, ...db.shards]) {
      const mon = dataSourceFor(node.monitorUrl, 1);
      await mon.initialize();
      try {
        // What it is for works: replication status and GTID positions.
        if (node === replica) {
          const [status] = await mon.query(node.dialect.sql.replicaStatus);
          expect(status).toBeDefined();
        }
        expect(await node.dialect.gtidPosition(mon)).not.toBe('');
        // Application data does not (a replica refuses writes for being read-only first: ask the writable nodes).
        const table = node.role === 'shard' ? 'orders' : 'users';
        expect(DENIED).toContain(await errnoOf(mon, `SELECT * FROM \`${node.url.database}\`.${table} LIMIT 1`));
        if (node.role !== 'replica') expect(DENIED).toContain(await errnoOf(mon, `INSERT INTO \`${node.url.database}\`.${probe} (id, v) VALUES (9, 9)`));
        expect(DENIED).toContain(await errnoOf(mon, 'SELECT user FROM mysql.user'));
      } finally {
        await mon.destroy();
      }
    }
    // Nor can it open the schema at all.
    const inSchema = dataSourceFor({ ...replica.monitorUrl, database: replica.url.database }, 1);
    const err = await inSchema.initialize().then(() => null, (e: { errno?: number }) => e);
    if (inSchema.isInitialized) await inSchema.destroy();
    expect(DENIED).toContain(Number(err?.errno));
  });

  it('the replica monitor reads replication status through the monitor account', async () => {
    const monitor = new ReplicaMonitor(db, { intervalMs: 60_000 });
    try {
      await monitor.check();
      for (const r of db.replicas) {
        const h = monitor.health(r.name)!;
        expect({ name: r.name, checked: h.checkedAt > 0, io: h.ioRunning, sql: h.sqlRunning, applied: h.appliedGtid !== '' }).toEqual({ name: r.name, checked: true, io: true, sql: true, applied: true });
        expect(h.reason).not.toMatch(/denied|privilege/i);
      }
    } finally {
      await monitor.stop();
    }
  });

  it('DDL goes through the DDL account, a pool of its own', async () => {
    const ddl = await db.ddl(db.primary);
    expect(ddl).not.toBe(db.primary.ds);
    const [{ who }] = await ddl.query('SELECT CURRENT_USER() AS who');
    expect(who).toBe(`${testConfig().db.ddl.user}@%`);
    await ddl.query(`ALTER TABLE ${probe} ADD COLUMN w INT NULL`);
    const cols: unknown[] = await admin.primary.ds.query(`SHOW COLUMNS FROM ${probe}`);
    expect(cols).toHaveLength(3);
    // …and it, too, stays out of the server's accounts.
    expect(DENIED).toContain(await errnoOf(ddl, 'SELECT user FROM mysql.user'));
  });
});

describe('account configuration', () => {
  it('the DDL and monitor accounts come from DB_DDL_* / DB_MONITOR_*, on the hosts of the app URLs', () => {
    const db = loadConfig({ DB_SHARD_URLS: 'mysql://app:a@s0:3306/m,mysql://app:a@s1:3307/m', DB_DDL_USER: 'ddl', DB_DDL_PASSWORD: 'p@ss/w:rd', DB_MONITOR_USER: 'mon', DB_MONITOR_PASSWORD: 'q' }).db;
    const ddl = ddlTopology(db);
    expect(ddl.replicas).toEqual([]);
    expect(ddl.shards.map((s) => [s.user, s.password, s.host, s.port, s.database])).toEqual([['ddl', 'p@ss/w:rd', 's0', 3306, 'm'], ['ddl', 'p@ss/w:rd', 's1', 3307, 'm']]);
    // The rebuilt URL parses back to the same account (the password is URL-encoded, not cut at '@' or '/').
    expect(parseDbUrl('x', ddl.shards[1].url)).toEqual(ddl.shards[1]);
    expect(db.shards.map((s) => s.user)).toEqual(['app', 'app']);
    const mon = withAccount(db.primary, db.monitor, '');
    expect([mon.user, mon.password, mon.database]).toEqual(['mon', 'q', '']);
    // Defaults: the native stack's accounts.
    expect([loadConfig({}).db.primary.user, loadConfig({}).db.ddl.user, loadConfig({}).db.monitor.user]).toEqual(['mallscale_app', 'mallscale_ddl', 'mallscale_monitor']);
  });
});
