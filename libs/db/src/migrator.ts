/**
 * Migrator: applies the plain, ordered SQL files of libs/db/migrations/<role>/ to a database.
 * Roles: `catalog` (the primary; replicas follow through replication) and `shard` (every order shard).
 * Applied versions are recorded in schema_migrations; a named lock serialises concurrent runs (two API
 * instances, parallel test workers). Never `synchronize`: the SQL is what readers came to see.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, type DbUrl } from '#libs/core';
import { dataSourceFor } from './db-nodes.js';

export type MigrationRole = 'catalog' | 'shard';

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

export function migrationsDir(role: MigrationRole): string {
  return join(repoRoot(), 'libs', 'db', 'migrations', role);
}

export function loadMigrations(role: MigrationRole): Migration[] {
  return readdirSync(migrationsDir(role))
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(join(migrationsDir(role), f), 'utf8');
      return { version: f.slice(0, 4), name: f, sql, checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16) };
    });
}

/** Splits a migration into statements: a statement ends with `;` at the end of a line. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}

/**
 * `url` must carry an account that may run DDL (config.db.ddl). `shardIndex`: the shard's position in
 * DB_SHARD_URLS, recorded on the shard on first migrate and refused if the shard later comes at another one.
 */
export async function migrate(url: DbUrl, role: MigrationRole, log: (m: string) => void = () => undefined, opts: { shardIndex?: number } = {}): Promise<string[]> {
  // Create the database first through a connection without a default schema.
  const admin = dataSourceFor({ ...url, database: '' } as DbUrl, 1);
  await admin.initialize();
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${url.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.destroy();
  }
  const ds = dataSourceFor(url, 1);
  await ds.initialize();
  const qr = ds.createQueryRunner();
  const applied: string[] = [];
  try {
    await qr.connect();
    const [lock] = await qr.query('SELECT GET_LOCK(?, 60) AS ok', [`mallscale_migrate_${url.database}`]);
    if (Number(lock.ok) !== 1) throw new Error(`could not take the migration lock on ${url.host}:${url.port}`);
    await qr.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version CHAR(4) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, checksum CHAR(16) NOT NULL,
      applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`);
    const done = new Map<string, string>(
      (await qr.query('SELECT version, checksum FROM schema_migrations')).map((r: any) => [r.version, r.checksum]),
    );
    for (const m of loadMigrations(role)) {
      if (done.has(m.version)) {
        if (done.get(m.version) !== m.checksum) log(`warning: ${m.name} changed after it was applied to ${url.host}:${url.port}`);
        continue;
      }
      // DDL commits implicitly in MySQL/MariaDB; a failed migration stops here and is fixed forward.
      for (const stmt of splitStatements(m.sql)) await qr.query(stmt);
      await qr.query('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)', [m.version, m.name, m.checksum]);
      applied.push(m.name);
      log(`applied ${role}/${m.name} on ${url.host}:${url.port}/${url.database}`);
    }
    if (role === 'shard' && opts.shardIndex !== undefined) {
      await qr.query('INSERT IGNORE INTO shard_identity (id, shard) VALUES (1, ?)', [opts.shardIndex]);
      const [row] = await qr.query('SELECT shard FROM shard_identity WHERE id = 1');
      if (Number(row.shard) !== opts.shardIndex) {
        throw new Error(`DB_SHARD_URLS is in the wrong order: DB_SHARD_URLS[${opts.shardIndex}] (${url.host}:${url.port}/${url.database}) is shard-${row.shard}, not shard-${opts.shardIndex}`);
      }
    }
    await qr.query('SELECT RELEASE_LOCK(?)', [`mallscale_migrate_${url.database}`]);
  } finally {
    await qr.release();
    await ds.destroy();
  }
  return applied;
}
