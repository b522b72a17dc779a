/**
 * Helpers for the cache tests. The key one: counting the loader's REAL queries on the database server.
 * Each test file gets a dedicated MariaDB/MySQL account; the API instances under test connect to the
 * primary as that account (and to no replica), so the server's per-account SELECT counter
 * (libs/testing selectCountByUser: MariaDB userstat / MySQL performance_schema) counts exactly the
 * statements these instances sent, whatever other test files run against the same server meanwhile.
 * Each file also gets its own cache prefix, so its Redis keys and invalidation channel are private.
 */
import { randomUUID } from 'node:crypto';
import { DbNodes } from '#libs/db';
import { selectCountByUser, testConfig, waitFor } from '#libs/testing';

export interface CountedAccount {
  user: string;
  /** Env overrides for startApi(): primary as this account, no replicas, private cache prefix. */
  env: Record<string, string>;
  /** SELECTs the server has executed for this account so far. */
  selects(): Promise<number>;
  /** Waits until the counter reaches `atLeast` (the server updates it at statement end), returns it. */
  selectsReaching(atLeast: number): Promise<number>;
  drop(): Promise<void>;
}

export async function countedAccount(db: DbNodes, extraEnv: Record<string, string> = {}): Promise<CountedAccount> {
  const user = `ct_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const password = `pw-${randomUUID()}`;
  const primary = testConfig().db.primary;
  const q = (sql: string, params: unknown[] = []) => db.primary.ds.query(sql, params);
  await q(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  await q(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${primary.database}\`.* TO '${user}'@'%'`);
  const selects = () => selectCountByUser(db.primary.dialect, db.primary.ds, user);
  await selects(); // switches the counters on (MariaDB) before the instances connect
  return {
    user,
    env: {
      DB_PRIMARY_URL: `mysql://${user}:${encodeURIComponent(password)}@${primary.host}:${primary.port}/${primary.database}`,
      DB_REPLICA_URLS: '',
      CACHE_PREFIX: `${user}:`,
      // The shorts enqueue sweeper SELECTs on the primary as the app account every interval: off here.
      SHORTS_SWEEP_INTERVAL_MS: '0',
      ...extraEnv,
    },
    selects,
    selectsReaching: (atLeast: number) => waitFor(async () => {
      const n = await selects();
      return n >= atLeast ? n : undefined;
    }, 20_000),
    drop: async () => {
      await q(`DROP USER IF EXISTS '${user}'@'%'`);
    },
  };
}

/** A product of its own for one test (unique name), inserted straight into the primary. */
export async function insertProduct(db: DbNodes, categoryCode: string, name: string, priceCents = 1000): Promise<string> {
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES (?, ?, '{"type":"object"}')`, [categoryCode, categoryCode]);
  const res = await db.primary.ds.query(
    `INSERT INTO products (category_id, name, price_cents, stock, attributes) SELECT id, ?, ?, 10, '{}' FROM categories WHERE code = ?`,
    [name, priceCents, categoryCode],
  );
  return String(res.insertId);
}

/** Sum of a Prometheus counter (all label sets, or those containing `match`) from /metrics text. */
export async function metric(url: string, name: string, match = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const [series, value] = line.split(' ');
    if ((series === name || series.startsWith(`${name}{`)) && series.includes(match)) sum += Number(value);
  }
  return sum;
}
