/**
 * `npm run seed -- [--users N] [--products N] [--orders N] [--if-empty]`
 *
 * Seeds the catalog (an admin, users, categories with attribute schemas, products with attributes) and
 * bulk orders spread over the last 12 months, each routed to its user's shard through OrderShardRouter,
 * with shard-aware ids. Bulk paths use multi-row INSERTs of a few thousand rows per statement, with a
 * progress bar. Measured ~6,000 orders/s (with 1-3 items each) on a busy 2-core box: `--orders 1000000`
 * takes about 3 minutes, not an hour.
 *
 * Default accounts: the demo users share one password, so they are for development only (refused with
 * NODE_ENV=production). The admin's password is SEED_ADMIN_PASSWORD, or generated when the admin is
 * created, printed once and written to var/admin-password (mode 0600) for the README walkthrough.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hash, verify } from '@node-rs/argon2';
import type { DataSource } from 'typeorm';
import { loadConfigOrExit, repoRoot, type AppConfig } from '#libs/core';
import { affectedRows, bucketOf, DbNodes, decodeOrderId, encodeOrderId, OrderShardRouter } from '#libs/db';
import { AttributePromoter, CATEGORY_DEFINITIONS } from '#libs/attributes';
import { intOption, parseCli } from './cli.js';
import { mulberry32, sampleAttributes } from './sample-data.js';

/** The category definitions live with AttributeSchema in libs/attributes (one source for seed, tests and bench). */
export const SEED_CATEGORIES = CATEGORY_DEFINITIONS;

function progress(label: string, done: number, total: number, t0: number) {
  if (!process.stderr.isTTY && done !== total && done % Math.max(1, Math.floor(total / 10)) !== 0) return;
  const pct = total ? done / total : 1;
  const bar = '█'.repeat(Math.round(pct * 30)).padEnd(30, '░');
  const rate = Math.round(done / Math.max(0.001, (Date.now() - t0) / 1000));
  process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${label.padEnd(9)} ${bar} ${done}/${total} (${rate}/s)${process.stderr.isTTY ? '' : '\n'}`);
  if (done === total && process.stderr.isTTY) process.stderr.write('\n');
}

export interface SeedOptions {
  users: number;
  products: number;
  orders: number;
  ifEmpty: boolean;
  /** Undefined: generate one when the admin is created (and print it once). */
  adminPassword?: string;
  /** Where a generated admin password is written (0600); undefined: nowhere. */
  adminPasswordFile?: string;
}

export const ADMIN_EMAIL = 'admin@mallscale.local';
/** The admin password earlier versions seeded and printed in the README: never kept. */
export const OLD_DEFAULT_ADMIN_PASSWORD = 'mallscale-admin';

/** Demo users share one password: refused outside development, with a sentence saying what to do. */
export function checkSeedAllowed(config: AppConfig, o: Pick<SeedOptions, 'users' | 'orders'>): void {
  if (config.env === 'production' && (o.users > 0 || o.orders > 0)) {
    throw new Error('demo users (one shared password) and their orders are for development only: refusing with NODE_ENV=production (use --users 0 --orders 0 to create only the admin and the catalog)');
  }
}

/**
 * Creates the admin once. Its password is the given one, or generated: printed once and written to
 * `passwordFile` (0600). An existing admin keeps its password, unless it is the old printed default. Returns the generated password, if any.
 */
export async function ensureAdmin(primary: DataSource, password?: string, passwordFile?: string): Promise<{ created: boolean; generated?: string; replacedOldDefault?: boolean }> {
  const adminPassword = password ?? randomBytes(18).toString('base64url');
  const res = await primary.query("INSERT IGNORE INTO users (email, password_hash, role) VALUES (?, ?, 'admin')", [ADMIN_EMAIL, await hash(adminPassword)]);
  const created = affectedRows(res) === 1;
  let replacedOldDefault = false;
  if (!created) {
    // A database seeded by an earlier version has the admin with the password that version printed in its
    // README: replace it (and end that admin's sessions), whatever else the seed does.
    const [row] = await primary.query('SELECT password_hash FROM users WHERE email = ?', [ADMIN_EMAIL]);
    if (!row || !(await verify(row.password_hash, OLD_DEFAULT_ADMIN_PASSWORD).catch(() => false))) return { created };
    await primary.query('UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE email = ?', [await hash(adminPassword), ADMIN_EMAIL]);
    replacedOldDefault = true;
    console.log(`seed: ${ADMIN_EMAIL} still had the old default password printed by earlier versions: replaced`);
  }
  if (password !== undefined) return { created, replacedOldDefault };
  // Shown once: it exists nowhere else but as its hash (and the 0600 file, for the walkthrough).
  console.log(`seed: ${created ? "created" : "reset"} ${ADMIN_EMAIL} with the generated password ${adminPassword} (shown once; set SEED_ADMIN_PASSWORD to choose it)`);
  if (passwordFile) {
    await mkdir(dirname(passwordFile), { recursive: true });
    await writeFile(passwordFile, adminPassword, { mode: 0o600 });
    await chmod(passwordFile, 0o600); // writeFile keeps the mode of a file that already existed
    console.log(`seed: the admin password is also in ${passwordFile} (mode 0600): delete it once you have stored it`);
  }
  return { created, generated: adminPassword, replacedOldDefault };
}

export async function seed(config: AppConfig, o: SeedOptions): Promise<void> {
  checkSeedAllowed(config, o);
  if (o.adminPassword !== undefined && o.adminPassword.length < 8) throw new Error('SEED_ADMIN_PASSWORD must have at least 8 characters (sign-in refuses shorter ones)');
  const db = await DbNodes.connect({ ...config.db, replicas: [], poolSize: 4 });
  const r = mulberry32(42);
  try {
    const primary = db.primary.ds;
    if (o.ifEmpty) {
      // "Empty" means: no product in the seed's own categories (benchmarks add categories of their own).
      const codes = SEED_CATEGORIES.map((c) => c.code);
      const [{ n }] = await primary.query(`SELECT COUNT(*) AS n FROM products p JOIN categories c ON c.id = p.category_id WHERE c.code IN (${codes.map(() => '?').join(',')})`, codes);
      if (Number(n) > 0) {
        await ensureAdmin(primary, o.adminPassword, o.adminPasswordFile);
        console.log(`seed: the catalog already has ${n} seeded products; nothing to do`);
        return;
      }
    }
    // Admin + users. One hash for all seeded users: argon2 is slow on purpose.
    await ensureAdmin(primary, o.adminPassword, o.adminPasswordFile);
    const userHash = await hash('password-123');
    let t0 = Date.now();
    for (let i = 0; i < o.users; i += 2000) {
      const n = Math.min(2000, o.users - i);
      const rows = Array.from({ length: n }, (_, k) => `('seed-user-${i + k + 1}@mallscale.local', '${userHash}', 'user')`);
      await primary.query(`INSERT IGNORE INTO users (email, password_hash, role) VALUES ${rows.join(',')}`);
      progress('users', i + n, o.users, t0);
    }
    for (const c of SEED_CATEGORIES) {
      await primary.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name)', [c.code, c.name, JSON.stringify(c.schema)]);
    }
    const cats: { id: number; code: string }[] = await primary.query('SELECT id, code FROM categories');
    t0 = Date.now();
    for (let i = 0; i < o.products; i += 2000) {
      const n = Math.min(2000, o.products - i);
      const params: unknown[] = [];
      const rows: string[] = [];
      for (let k = 0; k < n; k++) {
        const c = cats[(i + k) % cats.length];
        rows.push('(?, ?, ?, ?, ?)');
        params.push(c.id, `${c.code} product ${i + k + 1}`, 100 + Math.floor(r() * 200000), 10 + Math.floor(r() * 1000), JSON.stringify(sampleAttributes(c.code, r, Date.now())));
      }
      await primary.query(`INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES ${rows.join(',')}`, params);
      progress('products', i + n, o.products, t0);
    }
    // Index what the schemas mark x-filterable, after the bulk insert: the promoter backfills array values
    // (allergens) that the bulk INSERT did not write, and a promotion that is already done is a no-op.
    const qr = (await db.ddl(db.primary)).createQueryRunner(); // ALTER TABLE: the DDL account
    try {
      await qr.connect();
      const promoter = new AttributePromoter(qr);
      for (const c of SEED_CATEGORIES) await promoter.promoteDeclared(c.code);
    } finally {
      await qr.release();
    }
    if (o.orders > 0) await seedOrders(db, o.orders, r);
    console.log(`seed: ${o.users} users, ${o.products} products, ${o.orders} orders (admin: ${ADMIN_EMAIL})`);
  } finally {
    await db.close();
  }
}

async function seedOrders(db: DbNodes, total: number, r: () => number): Promise<void> {
  const router = new OrderShardRouter(db.primary.ds, db.shards.length);
  await router.reload();
  const [{ maxUser }] = await db.primary.ds.query('SELECT COALESCE(MAX(id), 1) AS maxUser FROM users');
  const [{ maxProduct }] = await db.primary.ds.query('SELECT COALESCE(MAX(id), 1) AS maxProduct FROM products');
  let seq = 0;
  const yearMs = 365 * 86400000;
  const now = Date.now();
  const batch = 5000;
  const t0 = Date.now();
  // One buffer per shard; flushed as two multi-row INSERTs (orders, items) per batch.
  for (let done = 0; done < total; ) {
    const n = Math.min(batch, total - done);
    const orders: unknown[][] = db.shards.map(() => []);
    const items: unknown[][] = db.shards.map(() => []);
    const counts = db.shards.map(() => ({ o: 0, i: 0 }));
    for (let k = 0; k < n; k++) {
      const userId = 1 + Math.floor(r() * Number(maxUser));
      const bucket = bucketOf(userId);
      const shard = router.shardForBucketSync(bucket);
      const ts = now - Math.floor(r() * yearMs);
      // Past times in random order: encode directly. OrderIdGenerator would read an older time as a clock step
      // back and keep issuing ids at the newest time seen, piling every seeded order into the last month.
      const id = encodeOrderId(ts, bucket, seq++ & 4095);
      const created = new Date(decodeOrderId(id).timestampMs);
      const lines = 1 + Math.floor(r() * 3);
      let total = 0;
      for (let l = 1; l <= lines; l++) {
        const price = 100 + Math.floor(r() * 50000);
        const qty = 1 + Math.floor(r() * 3);
        total += price * qty;
        items[shard].push(id.toString(), l, 1 + Math.floor(r() * Number(maxProduct)), qty, price, created);
        counts[shard].i++;
      }
      orders[shard].push(id.toString(), userId, bucket, 'paid', total, lines, created);
      counts[shard].o++;
    }
    await Promise.all(
      db.shards.map(async (s, i) => {
        if (!counts[i].o) return;
        await s.ds.query(`INSERT INTO orders (id, user_id, bucket, status, total_cents, item_count, created_at) VALUES ${Array(counts[i].o).fill('(?,?,?,?,?,?,?)').join(',')}`, orders[i]);
        await s.ds.query(`INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price_cents, created_at) VALUES ${Array(counts[i].i).fill('(?,?,?,?,?,?)').join(',')}`, items[i]);
      }),
    );
    done += n;
    progress('orders', done, total, t0);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseCli('usage: npm run seed -- [--users N] [--products N] [--orders N] [--if-empty]', {
    users: { type: 'string' },
    products: { type: 'string' },
    orders: { type: 'string' },
    'if-empty': { type: 'boolean', default: false },
  });
  const config = loadConfigOrExit('seed');
  seed(config, {
    users: intOption(values.users, 'users', 200),
    products: intOption(values.products, 'products', 1000),
    orders: intOption(values.orders, 'orders', 2000),
    ifEmpty: values['if-empty'],
    adminPassword: process.env.SEED_ADMIN_PASSWORD || undefined,
    // The test environment (NODE_ENV=test) never writes the developer's var/admin-password.
    adminPasswordFile: config.env === 'test' ? undefined : join(repoRoot(), 'var', 'admin-password'),
  }).then(
    () => process.exit(0),
    (e) => {
      console.error(`seed failed: ${e.message}`);
      process.exit(1);
    },
  );
}
