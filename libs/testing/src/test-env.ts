/**
 * Where tests find real servers, in this order:
 *  1. DSNs given in the environment (TEST_DB_PRIMARY_URL, TEST_DB_REPLICA_URLS, TEST_DB_SHARD_URLS,
 *     TEST_REDIS_CACHE_URL, TEST_REDIS_QUEUE_URL),
 *  2. the native stack (docker/local), started when it is not running and the binaries exist,
 *  3. testcontainers running this repository's docker-compose.yml, where a Docker engine answers.
 * Test databases are named mallscale_test; the harness refuses any database whose name lacks "test".
 */
import { loadConfig, type AppConfig } from '#libs/core';

export const TEST_DB = process.env.TEST_DB_NAME || 'mallscale_test';

const local = (port: number) => `mysql://mallscale:mallscale@127.0.0.1:${port}/${TEST_DB}`;

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
    STORAGE_FS_ROOT: process.env.TEST_STORAGE_FS_ROOT || 'var/test-storage',
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

