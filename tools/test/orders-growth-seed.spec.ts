import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { bucketOf, encodeOrderId, ORDER_ID_EPOCH_MS, syntheticOrdersSelect } from '#libs/db';
import { testEnv } from '#libs/testing';

// The orders-growth bench (and the console's Q1.a experiment) generates its 10M rows on the server (SQL,
// libs/db syntheticOrdersSelect) instead of in Node: those rows must be the rows the application would write,
// or the bench measures a different table. Checked against the real primary.
const N = 3000;
const USERS = 200_000;
const m0 = Date.UTC(2025, 9, 1);
const span = Date.UTC(2026, 11, 1) - m0;

let conn: mysql.Connection;

beforeAll(async () => {
  const u = new URL(testEnv().DB_PRIMARY_URL);
  conn = await mysql.createConnection({ host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
  await conn.query("SET SESSION time_zone = '+00:00'");
});
afterAll(async () => {
  await conn?.end();
});

function expected(seq: number) {
  const user = 1 + ((seq * 2654435761) % USERS);
  const ts = m0 + Math.floor(((seq - 1) * span) / N);
  const bucket = bucketOf(user);
  return [encodeOrderId(ts, bucket, seq & 4095).toString(), String(user), String(bucket), 'paid', String(1000 + (seq % 50000)), String(1), new Date(ts).toISOString().replace('T', ' ').slice(0, 23)];
}

async function generated(mariadb: boolean, lo: number, hi: number): Promise<string[][]> {
  const [rows] = await conn.query({ sql: syntheticOrdersSelect({ mariadb, lo, hi, n: N, users: USERS, m0, span, epoch: ORDER_ID_EPOCH_MS }), rowsAsArray: true });
  return (rows as unknown[][]).map((r) => r.map((v) => (typeof v === 'string' ? v.slice(0, 23) : String(v))));
}

describe('orders-growth: rows generated on the server', () => {
  it('the SEQUENCE-engine rows carry the id, bucket and time the application computes (encodeOrderId, bucketOf)', async () => {
    const rows = await generated(true, 1, N);
    expect(rows).toHaveLength(N);
    expect(rows).toEqual(Array.from({ length: N }, (_, i) => expected(i + 1)));
  });

  it('a chunk (rows 1001..2000 of 3000) is the same rows as in one statement, so chunked seeding changes nothing', async () => {
    expect(await generated(true, 1001, 2000)).toEqual(Array.from({ length: 1000 }, (_, i) => expected(1001 + i)));
  });

  it('the recursive-CTE form (the MySQL 8.4 path, run here on MariaDB) gives the same rows', async () => {
    expect(await generated(false, 1, 500)).toEqual(Array.from({ length: 500 }, (_, i) => expected(i + 1)));
  });

  it('ids are time-ordered and unique, so the primary key only ever appends', async () => {
    const ids = (await generated(true, 1, N)).map((r) => BigInt(r[0]));
    expect(new Set(ids.map(String)).size).toBe(N);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1])).toBe(true);
  });
});
