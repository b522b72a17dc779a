/**
 * Where tests find real servers, in this order:
 *  1. DSNs given in the environment (TEST_DB_PRIMARY_URL, TEST_DB_REPLICA_URLS, TEST_DB_SHARD_URLS,
 *     TEST_REDIS_CACHE_URL, TEST_REDIS_QUEUE_URL),
 *  2. the native stack (docker/local), started when it is not running and the binaries exist,
 *  3. testcontainers running this repository's docker-compose.yml, where a Docker engine answers.
 * Test databases are named mallscale_test; the harness refuses any database whose name lacks "test".
 * The app under test gets the same least-privilege accounts as in production (DML-only app account, DDL
 * and monitor accounts); fixtures that need more (DDL on purpose, USER_STATISTICS) use `testAdminConfig()`,
 * the native stack's all-powerful `mallscale` account (TEST_DB_ADMIN_USER / TEST_DB_ADMIN_PASSWORD).
 */
import { loadConfig, type AppConfig, type DbUrl } from '#libs/core';
import { withAccount } from '#libs/db';

const asAdmin = (url: DbUrl) => withAccount(url, TEST_DB_ADMIN);

export const TEST_DB = process.env.TEST_DB_NAME || 'mallscale_test';

const local = (port: number) => `mysql://mallscale_app:mallscale_app@127.0.0.1:${port}/${TEST_DB}`;

/** Environment for the app under test (what the app would read from its own env). */
export function testEnv(): Record<string, string> {
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
    DB_PRIMARY_URL: process.env.TEST_DB_PRIMARY_URL || local(3307),
    DB_REPLICA_URLS: process.env.TEST_DB_REPLICA_URLS ?? `${local(3308)},${local(3309)}`,
    DB_SHARD_URLS: process.env.TEST_DB_SHARD_URLS || `${local(3310)},${local(3311)}`,
    REDIS_CACHE_URL: process.env.TEST_REDIS_CACHE_URL || 'redis://127.0.0.1:6380',
    REDIS_QUEUE_URL: process.env.TEST_REDIS_QUEUE_URL || 'redis://127.0.0.1:6381',
    JWT_SECRET: 'test-secret-0123456789-0123456789-abcdef',
    DB_DDL_USER: process.env.TEST_DB_DDL_USER || 'mallscale_ddl',
    DB_DDL_PASSWORD: process.env.TEST_DB_DDL_PASSWORD ?? 'mallscale_ddl',
    DB_MONITOR_USER: process.env.TEST_DB_MONITOR_USER || 'mallscale_monitor',
    DB_MONITOR_PASSWORD: process.env.TEST_DB_MONITOR_PASSWORD ?? 'mallscale_monitor',
    STORAGE_FS_ROOT: process.env.TEST_STORAGE_FS_ROOT || 'var/test-storage',
    // The suites sign up and upload as dozens of users from 127.0.0.1 in parallel: limits stay on but out of
    // reach here; rate-limit.spec.ts sets small ones (and its own key prefix) per instance.
    RATE_LIMIT_SIGN_IN_ACCOUNT_MAX: '1000000',
    RATE_LIMIT_SIGN_IN_IP_MAX: '1000000',
    RATE_LIMIT_SIGN_UP_IP_MAX: '1000000',
    RATE_LIMIT_UPLOAD_USER_MAX: '1000000',
    RATE_LIMIT_UPLOAD_IP_MAX: '1000000',
    RATE_LIMIT_PASSWORD_USER_MAX: '1000000',
    // Tests run the stock reconciler when they mean to (its background rounds would add queries that
    // tests counting an account's SELECTs do not expect); the loop itself is tested with an override.
    ORDER_RECONCILE_INTERVAL_S: '0',
  };
  return env;
}

export function refuseNonTestDatabases(config: AppConfig): void {
  for (const u of [config.db.primary, ...config.db.replicas, ...config.db.shards]) {
    if (!/test/i.test(u.database)) {
      throw new Error(`refusing to run tests against database '${u.database}' on ${u.host}:${u.port}: test databases must have "test" in their name`);
    }
  }
}

export function testConfig(overrides: Record<string, string> = {}): AppConfig {
  const config = loadConfig({ ...testEnv(), ...overrides });
  refuseNonTestDatabases(config);
  return config;
}


/** The harness's own admin account, for fixtures only (never given to the app under test). */
export const TEST_DB_ADMIN = { user: process.env.TEST_DB_ADMIN_USER || 'mallscale', password: process.env.TEST_DB_ADMIN_PASSWORD ?? 'mallscale' };

/** testConfig() with every node reached through the admin account: for fixtures that do DDL or read server statistics. */
export function testAdminConfig(overrides: Record<string, string> = {}): AppConfig {
  const config = testConfig(overrides);
  const db = config.db;
  return { ...config, db: { ...db, primary: asAdmin(db.primary), replicas: db.replicas.map(asAdmin), shards: db.shards.map(asAdmin), ddl: TEST_DB_ADMIN, monitor: TEST_DB_ADMIN } };
}
