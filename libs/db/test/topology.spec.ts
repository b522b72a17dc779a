/**
 * The foundation's promises about the topology, checked on the real servers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { addMonths, DbNodes, monthStart, partitionName } from '#libs/db';
import { testAdminConfig } from '#libs/testing';

let db: DbNodes;
beforeAll(async () => {
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 4 }); // fixtures: the harness's admin account
});
afterAll(async () => {
  await db?.close();
});

describe('catalog replication', () => {
  it('when a row is written on the primary, then both replicas return it after applying its GTID', async () => {
    const email = `repl-${randomUUID()}@test.mallscale`;
    const qr = db.primary.ds.createQueryRunner();
    let gtid: string;
    try {
      await qr.query("INSERT INTO users (email, password_hash) VALUES (?, 'x')", [email]);
      gtid = await db.primary.dialect.lastWriteGtid(qr);
    } finally {
      await qr.release();
    }
    expect(gtid).toMatch(db.primary.dialect.name === 'mariadb' ? /^\d+-\d+-\d+$/ : /:/);
    expect(db.replicas).toHaveLength(2);
    for (const replica of db.replicas) {
      const rq = replica.ds.createQueryRunner();
      try {
        expect(await replica.dialect.waitForGtid(rq, gtid, 5000)).toBe(true);
        const rows = await rq.query('SELECT email FROM users WHERE email = ?', [email]);
        expect(rows).toEqual([{ email }]);
      } finally {
        await rq.release();
      }
    }
  });

  it('replicas are read-only and report running replication threads', async () => {
    for (const replica of db.replicas) {
      const [{ ro }] = await replica.ds.query('SELECT @@read_only AS ro');
      expect(Number(ro)).toBe(1);
      const st = await replica.dialect.replicaStatus(replica.ds);
      expect(st).toMatchObject({ configured: true, ioRunning: true, sqlRunning: true });
    }
  });
});

describe('order shards', () => {
  it('are separate servers: different server ids and ports, and a row on one is absent on the other', async () => {
    const ids = await Promise.all(db.shards.map(async (s) => (await s.ds.query('SELECT @@server_id AS id, @@port AS port'))[0]));
    expect(new Set(ids.map((r) => String(r.id))).size).toBe(db.shards.length);
    expect(new Set(ids.map((r) => String(r.port))).size).toBe(db.shards.length);
    const orderId = String(BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000)));
    await db.shards[0].ds.query(
      "INSERT INTO orders (id, user_id, bucket, status, total_cents, item_count, created_at) VALUES (?, 1, 0, 'test', 0, 0, UTC_TIMESTAMP(3))",
      [orderId],
    );
    expect(await db.shards[0].ds.query('SELECT id FROM orders WHERE id = ?', [orderId])).toHaveLength(1);
    expect(await db.shards[1].ds.query('SELECT id FROM orders WHERE id = ?', [orderId])).toHaveLength(0);
  });

  it('orders are partitioned by month and a one-month query touches one partition (EXPLAIN through the dialect)', async () => {
    const shard = db.shards[0];
    const month = monthStart(new Date());
    const plan = await shard.dialect.explainPartitions(
      shard.ds,
      'SELECT id FROM orders WHERE user_id = 1 AND created_at >= ? AND created_at < ?',
      [month, addMonths(month, 1)],
    );
    expect(plan[0].partitions).toEqual([partitionName(month)]);
    const all = await shard.dialect.explainPartitions(shard.ds, 'SELECT id FROM orders WHERE user_id = 1');
    expect(all[0].partitions.length).toBeGreaterThan(12);
  });
});

describe('dialect', () => {
  it('is detected from VERSION() on every node', () => {
    for (const n of db.all()) expect(['mariadb', 'mysql']).toContain(n.dialect.name);
    expect(db.primary.dialect.version).toMatch(/\d+\.\d+/);
  });
});
