/**
 * ReplicaRouter and ReplicaMonitor on the real replicas (non-destructive: nothing is stopped or killed
 * here; see replica.chaos.spec.ts for that). Each test owns its category and products.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ApiError, Metrics, loadConfig } from '#libs/core';
import { ConsistencyToken, DbNodes, InvalidConsistencyToken, MariaDbDialect, MySqlDialect, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { testConfig } from '#libs/testing';

let db: DbNodes;
let monitor: ReplicaMonitor;
let router: ReplicaRouter;
let categoryId: number;
const metrics = new Metrics({ defaultMetrics: false });

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 8 });
  monitor = new ReplicaMonitor(db, { intervalMs: 250, maxLagMs: 1000, metrics });
  await monitor.start();
  router = new ReplicaRouter(db, monitor, { waitMs: 200, metrics });
  const code = `rr-${randomUUID().slice(0, 8)}`;
  const res = await db.primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'router test', '{}')`, [code]);
  categoryId = Number(res.insertId);
});
afterAll(async () => {
  await monitor?.stop();
  await db?.close();
});

const insertProduct = (name: string) =>
  router.write(async (on) => (await on.query('INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, ?, 1, ?)', [categoryId, name, '{}'])).insertId as number);

describe('ReplicaRouter', () => {
  it('when both replicas are healthy, then reads alternate between them and run on the replica servers themselves', async () => {
    await monitor.check();
    const ports = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const [node, port] = await router.read(async (on, n) => [n.name, Number((await on.query('SELECT @@port AS p'))[0].p)] as const, null);
      ports.set(node, port);
    }
    expect([...ports.keys()].sort()).toEqual(['replica-1', 'replica-2']);
    expect(ports.get('replica-1')).toBe(db.replicas[0].url.port);
    expect(ports.get('replica-2')).toBe(db.replicas[1].url.port);
  });

  it('when a write runs, then it goes to the primary and returns the GTID it produced as the token', async () => {
    const { value: id, token } = await insertProduct(`w-${randomUUID()}`);
    expect(id).toBeGreaterThan(0);
    expect(token).not.toBeNull();
    expect(db.primary.dialect.isGtid(token!.gtid)).toBe(true);
    const primaryPos = await db.primary.dialect.gtidPosition(db.primary.ds);
    expect(token!.isCoveredBy(db.primary.dialect, primaryPos)).toBe(true);
  });

  it('when 200 writes are each read back at once with their token, then every read sees its write', async () => {
    let stale = 0;
    for (let i = 0; i < 200; i++) {
      const name = `ryw-${randomUUID()}`;
      const { value: id, token } = await insertProduct(name);
      const row = await router.read(async (on) => (await on.query('SELECT name FROM products WHERE id = ?', [id]))[0], token);
      if (row?.name !== name) stale++;
    }
    expect(stale).toBe(0);
  });

  it('when a transaction commits, then its token covers the write and a rolled-back one leaves nothing', async () => {
    const name = `tx-${randomUUID()}`;
    const { token } = await router.transaction((on) => on.query('INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, ?, 1, ?)', [categoryId, name, '{}']));
    const found = await router.read(async (on) => (await on.query('SELECT COUNT(*) AS n FROM products WHERE name = ?', [name]))[0].n, token);
    expect(Number(found)).toBe(1);
    const failed = `tx-${randomUUID()}`;
    await expect(
      router.transaction(async (on) => {
        await on.query('INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, ?, 1, ?)', [categoryId, failed, '{}']);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(Number((await db.primary.ds.query('SELECT COUNT(*) AS n FROM products WHERE name = ?', [failed]))[0].n)).toBe(0);
  });

  it('when the read SQL itself is wrong, then the error surfaces and is not retried elsewhere', async () => {
    await expect(router.read((on) => on.query('SELECT no_such_column FROM products LIMIT 1'), null)).rejects.toThrow(/no_such_column/);
    expect(monitor.inRotation().length).toBe(2);
  });

  it('when no replica can be reached, then reads go to the primary (REPLICA_FALLBACK=primary) or fail with a 503 (=503)', async () => {
    const cfg = testConfig();
    const dead = { ...cfg.db.replicas[0], port: 1, url: 'mysql://x@127.0.0.1:1/mallscale_test' };
    const lonely = await DbNodes.connect({ ...cfg.db, replicas: [dead], poolSize: 2 });
    const m = new ReplicaMonitor(lonely, { intervalMs: 250, probeTimeoutMs: 1000 });
    try {
      await m.start();
      expect(m.health('replica-1')).toMatchObject({ inRotation: false });
      expect(m.health('replica-1')!.reason).toMatch(/^down|not connected/);
      const toPrimary = new ReplicaRouter(lonely, m, { fallback: 'primary' });
      expect(await toPrimary.read(async (_on, n) => n.name, null)).toBe('primary');
      const strict = new ReplicaRouter(lonely, m, { fallback: '503' });
      const err = await strict.read(async () => 1, null).catch((e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(503);
    } finally {
      await m.stop();
      await lonely.close();
    }
  });
});

describe('ReplicaMonitor', () => {
  it('when the replicas replicate, then each is in rotation with both threads running and its lag in ms and in transactions', async () => {
    await insertProduct(`mon-${randomUUID()}`);
    await monitor.check();
    for (const h of monitor.snapshot()) {
      expect(h).toMatchObject({ inRotation: true, reason: '', ioRunning: true, sqlRunning: true });
      expect(h.lagMs).not.toBeNull();
      expect(h.gtidBehind).not.toBeNull();
      expect(h.appliedGtid).not.toBe('');
    }
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/db_replica_in_rotation\{node="replica-1"\} 1/);
    expect(text).toMatch(/db_reads_total\{node="replica-2"\} \d+/);
  });
});

describe('ConsistencyToken and the dialects', () => {
  const maria = new MariaDbDialect('10.11.0-MariaDB');
  const mysql = new MySqlDialect('8.4.0');
  const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';

  it('when a token is not a GTID of the dialect, then it is refused with a sentence', () => {
    for (const bad of ['', 'abc', '0-1', "0-1-5' OR 1=1", `${uuid}:1-5`]) expect(() => ConsistencyToken.parse(bad, maria)).toThrow(InvalidConsistencyToken);
    expect(() => ConsistencyToken.parse('0-1-5', mysql)).toThrow(/MySQL GTID set/);
    expect(ConsistencyToken.parse(' 0-1-42 ', maria).gtid).toBe('0-1-42');
    expect(ConsistencyToken.parse(`${uuid}:1-42`, mysql).gtid).toBe(`${uuid}:1-42`);
  });

  it('when positions are compared, then coverage and merging follow each dialect (MariaDB per domain, MySQL per interval)', () => {
    expect(maria.gtidCovers('0-1-10,1-2-5', '0-1-9')).toBe(true);
    expect(maria.gtidCovers('0-1-10', '0-1-11')).toBe(false);
    expect(maria.gtidCovers('0-1-10', '1-2-1')).toBe(false);
    expect(maria.mergeGtids('0-1-10,1-2-3', '0-1-7,1-2-9')).toBe('0-1-10,1-2-9');
    expect(maria.gtidBehind('0-1-10', '0-1-7')).toBe(3);
    expect(mysql.gtidCovers(`${uuid}:1-100`, `${uuid}:42`)).toBe(true);
    expect(mysql.gtidCovers(`${uuid}:1-41`, `${uuid}:42`)).toBe(false);
    expect(mysql.gtidBehind(`${uuid}:1-100`, `${uuid}:1-90`)).toBe(10);
    const merged = ConsistencyToken.merge(maria, ConsistencyToken.of('0-1-3'), ConsistencyToken.of('0-1-8'));
    expect(merged?.gtid).toBe('0-1-8');
  });

  it('when the replication settings are wrong, then start-up stops with a sentence naming the variable', () => {
    expect(() => loadConfig({ REPLICA_FALLBACK: 'replica' })).toThrow(/REPLICA_FALLBACK must be one of primary, 503/);
    expect(() => loadConfig({ MAX_REPLICA_LAG_MS: '-5' })).toThrow(/MAX_REPLICA_LAG_MS must be an integer/);
    expect(loadConfig({}).replication).toMatchObject({ maxLagMs: 1000, waitMs: 50, fallback: 'primary' });
  });
});
