/**
 * What several scenarios need from the servers: a connection from a URL, the native stack's admin URL of a
 * node, and mysql2 results in the shape libs/db's SqlDialect queries (rows only).
 */
import { loadavg } from 'node:os';
import mysql, { type Connection } from 'mysql2/promise';
import type { Queryable } from '#libs/db';
import type { BenchResult } from '../runner/bench.js';

/** The native stack's all-powerful fixture account on a local port (benchmarks seed and count with it). */
export const localAdminUrl = (port: number, database = 'mallscale', user = 'mallscale', password = 'mallscale') => `mysql://${user}:${password}@127.0.0.1:${port}/${database}`;

/** A native-stack node's port: STACK_PORT_<NAME> (a private stack), else its default. */
export const stackPort = (name: string, dflt: number) => Number(process.env[`STACK_PORT_${name}`] || dflt);

/** One connection to the database a mysql:// URL names. */
export function connect(url: string): Promise<Connection> {
  const u = new URL(url);
  return mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1) });
}

/** A mysql2 connection as SqlDialect's Queryable (query → rows). */
export const queryable = (c: Connection): Queryable => ({ query: async (sql, params) => (await c.query(sql, params))[0] });

/** The box's 1-minute load average, one decimal: on a shared 2-core machine, a mode measured under load 10 is noise. */
export const loadavg1m = () => Math.round(loadavg()[0] * 10) / 10;

/** A ratio of a result as a headline shows it: "1.9×", or why it was omitted. */
export const ratioText = (r: BenchResult, key: string) => (r.ratios[key] != null ? `${r.ratios[key]}×` : `omitted (${r.ratiosOmitted?.[key] ?? 'not measured'})`);

/**
 * A mysql2 connection whose query results are untyped rows: scenarios run ad-hoc SQL (status counters, EXPLAIN,
 * seeding) whose shape the SQL text states, so a row type per statement would only repeat it.
 */
export type SqlConnection = Omit<Connection, 'query'> & { query(sql: string, params?: unknown): Promise<[any, unknown]> };
export const untyped = (c: Connection) => c as unknown as SqlConnection;

/**
 * At least `count` products in the bench category `code` (created when missing, topped up in batches of 500);
 * returns the first `count` ids. `product(i)` gives the i-th product's price and attributes.
 */
export async function ensureBenchProducts(conn: Connection, code: string, label: string, count: number, product: (i: number) => { priceCents: number; attributes: object }): Promise<string[]> {
  const c = untyped(conn);
  await c.query("INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES (?, ?, '{\"type\":\"object\"}')", [code, label]);
  const [[cat]] = await c.query('SELECT id FROM categories WHERE code = ?', [code]);
  const [[{ n }]] = await c.query('SELECT COUNT(*) AS n FROM products WHERE category_id = ?', [cat.id]);
  for (let i = Number(n); i < count; i += 500) {
    const rows = Array.from({ length: Math.min(500, count - i) }, (_, k) => {
      const p = product(i + k);
      return [cat.id, `${label} product ${i + k}`, p.priceCents, 100, JSON.stringify(p.attributes)];
    });
    await c.query('INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES ?', [rows]);
  }
  const [ids] = await c.query('SELECT id FROM products WHERE category_id = ? ORDER BY id LIMIT ?', [cat.id, count]);
  return ids.map((r: { id: unknown }) => String(r.id));
}

/** What a database-level (`run`) scenario has no use for: no HTTP modes, and a request the runner never sends. */
export const runOnly = { modes: {}, request: () => ({ method: 'GET', path: '/health/live' }) };
