import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '#libs/core';

describe('loadConfig', () => {
  it('when nothing is set, then every key has a default that works with the native stack', () => {
    const c = loadConfig({});
    expect(c.db.primary.port).toBe(3307);
    expect(c.db.replicas.map((r) => r.port)).toEqual([3308, 3309]);
    expect(c.db.shards.map((r) => r.port)).toEqual([3310, 3311]);
    expect(c.redis.cacheUrl).toBe('redis://127.0.0.1:6380');
    expect(c.redis.queueUrl).toBe('redis://127.0.0.1:6381');
  });

  it('when the primary URL is garbage, then start-up stops with one sentence naming the variable', () => {
    expect(() => loadConfig({ DB_PRIMARY_URL: 'not a url' })).toThrow(ConfigError);
    expect(() => loadConfig({ DB_PRIMARY_URL: 'not a url' })).toThrow(/^DB_PRIMARY_URL is not a valid URL/);
    expect(() => loadConfig({ DB_PRIMARY_URL: 'postgres://x@h/db' })).toThrow(/DB_PRIMARY_URL must start with mysql:\/\//);
    expect(() => loadConfig({ DB_SHARD_URLS: 'mysql://u:p@h:1/ok,mysql://u:p@h:1/bad-name' })).toThrow(/DB_SHARD_URLS\[1\]/);
  });

  it('when NODE_ENV=production and JWT_SECRET is missing or short, then start-up stops', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET is required when NODE_ENV=production/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short' })).toThrow(/JWT_SECRET is too short/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).auth.jwtSecret).toBe('x'.repeat(32));
  });

  it('when a number or enum is wrong, then the message says what is allowed', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT must be an integer between 0 and 65535/);
    expect(() => loadConfig({ STORAGE_DRIVER: 'ftp' })).toThrow(/STORAGE_DRIVER must be one of fs, s3/);
    expect(() => loadConfig({ REDIS_CACHE_URL: 'http://x' })).toThrow(/REDIS_CACHE_URL must be a redis:\/\/ URL/);
  });

  it('when ORDER_FAILPOINT is set outside NODE_ENV=test, then it is ignored (a crash switch never reaches a deployment)', () => {
    const secret = 'a9'.repeat(24);
    expect(loadConfig({ NODE_ENV: 'development', ORDER_FAILPOINT: 'after-claim' }).orders.failpoint).toBe('');
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, ORDER_FAILPOINT: 'after-reserve' }).orders.failpoint).toBe('');
    expect(loadConfig({ NODE_ENV: 'test', ORDER_FAILPOINT: 'after-reserve' }).orders.failpoint).toBe('after-reserve');
    expect(() => loadConfig({ NODE_ENV: 'test', ORDER_FAILPOINT: 'somewhere' })).toThrow(/ORDER_FAILPOINT must be one of after-claim, after-reserve, after-shard-commit/);
    expect(loadConfig({}).orders).toMatchObject({ leaseMs: 30_000, reconcileIntervalSeconds: 60, reservationRetentionHours: 24, failpoint: '' });
  });
});
