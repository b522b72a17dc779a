import { availableParallelism } from 'node:os';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, KNOWN_DEFAULT_SECRETS, loadConfig, NATIVE_STACK_DB_PASSWORDS } from '#libs/core';

// Two keys as `openssl rand -hex 32` makes them.
const KEY_A = '3f9c1e7a52b84d06a1e9c7f2b5d8e04a6c1f3b7d9e2a5c8f0b4d6e1a3c7f9b2d';
const KEY_B = 'a7d2f5c8e1b4a7d0c3f6e9b2a5d8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2';
// Production database URLs: given explicitly, with generated passwords (the native stack's are refused).
const PROD_DB = {
  DB_PRIMARY_URL: 'mysql://app:9b1d7e0c4a@db-primary:3306/mallscale',
  DB_REPLICA_URLS: 'mysql://app:9b1d7e0c4a@db-replica-1:3306/mallscale',
  DB_SHARD_URLS: 'mysql://app:9b1d7e0c4a@db-shard-0:3306/mallscale,mysql://app:9b1d7e0c4a@db-shard-1:3306/mallscale',
};
const PROD = { NODE_ENV: 'production', JWT_SECRET: KEY_A, ORDER_CURSOR_SECRET: KEY_B, ...PROD_DB };

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
    const cursor = { ORDER_CURSOR_SECRET: KEY_B, ...PROD_DB };
    expect(() => loadConfig({ NODE_ENV: 'production', ...cursor })).toThrow(/^JWT_SECRET is required when NODE_ENV=production: /);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short', ...cursor })).toThrow(/^JWT_SECRET is too short for NODE_ENV=production/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: KEY_A, ...cursor }).auth.jwtSecret).toBe(KEY_A);
  });
  it('when a number or enum is wrong, then the message says what is allowed', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT must be an integer between 0 and 65535/);
    expect(() => loadConfig({ STORAGE_DRIVER: 'ftp' })).toThrow(/STORAGE_DRIVER must be one of fs, s3/);
    expect(() => loadConfig({ REDIS_CACHE_URL: 'http://x' })).toThrow(/REDIS_CACHE_URL must be a redis:\/\/ URL/);
  });

  describe('the catalog on Galera (DB_CATALOG_MODE, DB_GALERA_URLS)', () => {
    it('when DB_CATALOG_MODE=galera, then the catalog is DB_GALERA_URLS (default :3320-3322): the first node takes writes, the others are read nodes, DB_PRIMARY_URL is unused', () => {
      const c = loadConfig({ DB_CATALOG_MODE: 'galera', DB_PRIMARY_URL: 'mysql://u:p@elsewhere:1/x' });
      expect(c.db.catalog).toBe('galera');
      expect([c.db.primary, ...c.db.replicas].map((u) => u.port)).toEqual([3320, 3321, 3322]);
      expect(loadConfig({}).db.catalog).toBe('replicated');
    });
    it('when the mode or the node list is wrong, then start-up stops with one sentence naming the variable', () => {
      expect(() => loadConfig({ DB_CATALOG_MODE: 'cluster' })).toThrow(/^DB_CATALOG_MODE must be one of replicated, galera \(got 'cluster'\)$/);
      expect(() => loadConfig({ DB_CATALOG_MODE: 'galera', DB_GALERA_URLS: 'mysql://u:p@g1:3306/mallscale' })).toThrow(/^DB_GALERA_URLS must list at least two nodes of the Galera cluster/);
      expect(() => loadConfig({ DB_CATALOG_MODE: 'galera', DB_GALERA_URLS: 'mysql://u:p@g1:3306/ok,nope' })).toThrow(/DB_GALERA_URLS\[1\]/);
    });
    it('when NODE_ENV=production, then DB_GALERA_URLS is required and a native-stack password in it is refused', () => {
      const prod = { ...PROD, DB_CATALOG_MODE: 'galera' };
      expect(() => loadConfig(prod)).toThrow(/^DB_GALERA_URLS is required when NODE_ENV=production/);
      expect(() => loadConfig({ ...prod, DB_GALERA_URLS: 'mysql://app:9b1d7e0c4a@g1:3306/mallscale,mysql://mallscale_app:mallscale_app@g2:3306/mallscale' })).toThrow(/^DB_GALERA_URLS\[1\] has a password printed in this repository/);
      expect(loadConfig({ ...prod, DB_GALERA_URLS: 'mysql://app:9b1d7e0c4a@g1:3306/mallscale,mysql://app:9b1d7e0c4a@g2:3306/mallscale', DB_DDL_USER: 'ddl', DB_DDL_PASSWORD: '1f2e3d4c5b', DB_MONITOR_USER: 'mon', DB_MONITOR_PASSWORD: '6a7b8c9d0e' }).db.primary.host).toBe('g1');
    });
  });

  describe('Redis Sentinel (REDIS_<ROLE>_SENTINELS)', () => {
    it('when no sentinels are set, then each role is reached by its URL (the default six-node topology)', () => {
      const c = loadConfig({});
      expect(c.redis.cache).toEqual({ url: 'redis://127.0.0.1:6380', sentinels: [], masterName: 'mallscale-cache', reconnectMaxMs: 500 });
      expect(c.redis.queue).toEqual({ url: 'redis://127.0.0.1:6381', sentinels: [], masterName: 'mallscale-queue', reconnectMaxMs: 500 });
    });

    it('when sentinels and a master name are set, then the role is discovered through them, IPv6 in brackets', () => {
      const c = loadConfig({ REDIS_QUEUE_SENTINELS: '127.0.0.1:26379, sentinel-2:26380,[::1]:26381', REDIS_QUEUE_SENTINEL_NAME: 'shop.queue-1' });
      expect(c.redis.queue.sentinels).toEqual([{ host: '127.0.0.1', port: 26379 }, { host: 'sentinel-2', port: 26380 }, { host: '::1', port: 26381 }]);
      expect(c.redis.queue.masterName).toBe('shop.queue-1');
      expect(c.redis.cache.sentinels).toEqual([]);
    });

    it('when a sentinel address or a master name is malformed, then start-up stops naming the variable and the bad entry', () => {
      for (const bad of ['127.0.0.1', '127.0.0.1:0', 'h:65536', 'h:port', ':26379', 'redis://h:26379', 'a b:1', '[::1', '[zz::1]:26379', '127.0.0.1:26379,,h:1']) {
        expect(() => loadConfig({ REDIS_CACHE_SENTINELS: bad })).toThrow(/^REDIS_CACHE_SENTINELS must be a comma-separated list of host:port sentinel addresses \(got '/);
      }
      expect(() => loadConfig({ REDIS_QUEUE_SENTINELS: 'h:1', REDIS_QUEUE_SENTINEL_NAME: 'bad name' })).toThrow(/^REDIS_QUEUE_SENTINEL_NAME must be 1-64 letters, digits or \._- \(got 'bad name'\)/);
      expect(() => loadConfig({ REDIS_CACHE_SENTINEL_NAME: 'x'.repeat(65) })).toThrow(/^REDIS_CACHE_SENTINEL_NAME must be 1-64/);
      expect(() => loadConfig({ REDIS_SENTINEL_RECONNECT_MAX_MS: '0' })).toThrow(/^REDIS_SENTINEL_RECONNECT_MAX_MS must be an integer between 50 and 60000/);
    });
  });

  it('when SHARD_FENCE_CHECK=off is asked for in production, then start-up stops (the fence is what keeps a stale router off a moved bucket); resharding limits have defaults', () => {
    expect(() => loadConfig({ ...PROD, SHARD_FENCE_CHECK: 'off' })).toThrow(/^SHARD_FENCE_CHECK=off is refused when NODE_ENV=production/);
    expect(loadConfig({ NODE_ENV: 'development', SHARD_FENCE_CHECK: 'off' }).resharding.fenceCheck).toBe(false);
    expect(loadConfig({}).resharding).toMatchObject({ fenceCheck: true, fenceWaitMs: 2000, fencePollMs: 10, freezeWaitMs: 300, freezeAttempts: 5 });
    expect(() => loadConfig({ RESHARD_FREEZE_WAIT_MS: '5' })).toThrow(/RESHARD_FREEZE_WAIT_MS/);
    expect(loadConfig({}).resharding.sharePct).toBe(50);
    expect(loadConfig({ RESHARD_SHARE_PCT: '20' }).resharding.sharePct).toBe(20);
    for (const bad of ['0', '101', 'half']) expect(() => loadConfig({ RESHARD_SHARE_PCT: bad })).toThrow(/RESHARD_SHARE_PCT/);
  });

  it('when ORDER_FAILPOINT is set outside NODE_ENV=test, then it is ignored (a crash switch never reaches a deployment)', () => {
    expect(loadConfig({ NODE_ENV: 'development', ORDER_FAILPOINT: 'after-claim' }).orders.failpoint).toBe('');
    expect(loadConfig({ ...PROD, ORDER_FAILPOINT: 'after-reserve' }).orders.failpoint).toBe('');
    expect(loadConfig({ NODE_ENV: 'test', ORDER_FAILPOINT: 'after-reserve' }).orders.failpoint).toBe('after-reserve');
    expect(() => loadConfig({ NODE_ENV: 'test', ORDER_FAILPOINT: 'somewhere' })).toThrow(/ORDER_FAILPOINT must be one of after-claim, after-reserve, after-shard-commit/);
    expect(loadConfig({}).orders).toMatchObject({ leaseMs: 30_000, reconcileIntervalSeconds: 60, reservationRetentionHours: 24, failpoint: '' });
  });

  it("when NODE_ENV=production, then the native stack's database defaults are refused: URLs must be given, and no printed or empty password", () => {
    const keys = { NODE_ENV: 'production', JWT_SECRET: KEY_A, ORDER_CURSOR_SECRET: KEY_B };
    expect(() => loadConfig(keys)).toThrow(/^DB_PRIMARY_URL is required when NODE_ENV=production/);
    expect(() => loadConfig({ ...keys, DB_PRIMARY_URL: PROD_DB.DB_PRIMARY_URL, DB_REPLICA_URLS: '' })).toThrow(/^DB_SHARD_URLS is required when NODE_ENV=production/);
    for (const password of NATIVE_STACK_DB_PASSWORDS) {
      expect(() => loadConfig({ ...PROD, DB_SHARD_URLS: `mysql://mallscale_app:${password}@db-shard-0:3306/mallscale` })).toThrow(/^DB_SHARD_URLS\[0\] has a password printed in this repository/);
      expect(() => loadConfig({ ...PROD, DB_DDL_USER: 'ddl', DB_DDL_PASSWORD: password })).toThrow(/^DB_DDL_PASSWORD has a password printed in this repository/);
    }
    expect(() => loadConfig({ ...PROD, DB_PRIMARY_URL: 'mysql://app@db-primary:3306/mallscale' })).toThrow(/^DB_PRIMARY_URL has an empty password/);
    // Without DDL/monitor accounts, those jobs run as the app's account (DML only: DDL fails closed).
    const c = loadConfig(PROD);
    expect(c.db.ddl).toEqual({ user: 'app', password: '9b1d7e0c4a' });
    expect(c.db.monitor).toEqual({ user: 'app', password: '9b1d7e0c4a' });
    expect(c.db.replicas).toHaveLength(1);
    expect(loadConfig({ ...PROD, DB_REPLICA_URLS: '' }).db.replicas).toEqual([]);
    // Outside production the native stack stays the default.
    expect(loadConfig({}).db.primary.user).toBe('mallscale_app');
  });

  describe('secrets: no usable default wherever a production server can start', () => {
    it('when NODE_ENV=production and JWT_SECRET or ORDER_CURSOR_SECRET is a known default or a placeholder, then start-up stops', () => {
      for (const name of ['JWT_SECRET', 'ORDER_CURSOR_SECRET']) {
        for (const known of KNOWN_DEFAULT_SECRETS) {
          expect(() => loadConfig({ ...PROD, [name]: known })).toThrow(new RegExp(`^${name} is a known default or placeholder, refused when NODE_ENV=production`));
        }
        for (const placeholder of ['changeme'.repeat(4), 'secret'.repeat(6), 'x'.repeat(32), 'please-change-me-to-a-real-secret-now', 'Replace_Me: a long production secret key']) {
          expect(() => loadConfig({ ...PROD, [name]: placeholder })).toThrow(/known default or placeholder/);
        }
      }
      expect(KNOWN_DEFAULT_SECRETS).toEqual(expect.arrayContaining(['mallscale-development-secret-not-for-production', 'mallscale-compose-dev-secret-change-me-0123456789', 'test-secret-0123456789-0123456789-abcdef']));
    });

    it('when NODE_ENV=production and ORDER_CURSOR_SECRET is missing, short or equal to JWT_SECRET, then start-up stops', () => {
      expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: KEY_A, ...PROD_DB })).toThrow(/^ORDER_CURSOR_SECRET is required when NODE_ENV=production: .*openssl rand -hex 32/);
      expect(() => loadConfig({ ...PROD, ORDER_CURSOR_SECRET: 'short-key' })).toThrow(/^ORDER_CURSOR_SECRET is too short for NODE_ENV=production/);
      expect(() => loadConfig({ ...PROD, ORDER_CURSOR_SECRET: KEY_A })).toThrow(/^ORDER_CURSOR_SECRET must differ from JWT_SECRET/);
      const c = loadConfig(PROD);
      expect(c.auth).toMatchObject({ jwtSecret: KEY_A, orderCursorSecret: KEY_B });
    });

    it('when development runs on a non-loopback HOST without secrets, then start-up stops; on loopback the development keys are used', () => {
      for (const host of ['0.0.0.0', '::', '192.168.1.20', 'shop.example.com']) {
        expect(() => loadConfig({ NODE_ENV: 'development', HOST: host })).toThrow(new RegExp(`^JWT_SECRET is required when HOST=${host.replace(/\./g, '\\.')} is not a loopback address`));
        expect(() => loadConfig({ NODE_ENV: 'test', HOST: host, JWT_SECRET: KEY_A })).toThrow(/^ORDER_CURSOR_SECRET is required when HOST=/);
        expect(() => loadConfig({ NODE_ENV: 'development', HOST: host, JWT_SECRET: KNOWN_DEFAULT_SECRETS[0], ORDER_CURSOR_SECRET: KEY_B })).toThrow(/known default/);
        expect(loadConfig({ NODE_ENV: 'development', HOST: host, JWT_SECRET: KEY_A, ORDER_CURSOR_SECRET: KEY_B }).host).toBe(host);
      }
      for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) {
        const c = loadConfig({ NODE_ENV: 'development', HOST: host });
        expect(KNOWN_DEFAULT_SECRETS).toContain(c.auth.jwtSecret);
        expect(KNOWN_DEFAULT_SECRETS).toContain(c.auth.orderCursorSecret);
        expect(c.auth.orderCursorSecret).not.toBe(c.auth.jwtSecret);
      }
      expect(loadConfig({}).host).toBe('127.0.0.1');
      expect(() => loadConfig({ HOST: 'a b' })).toThrow(/^HOST must be a host name or an IP address/);
    });

    it('when development sits behind a local reverse proxy (TRUST_PROXY set), then the printed development keys are refused', () => {
      for (const proxy of ['loopback', '127.0.0.1', '10.0.0.0/8']) {
        expect(() => loadConfig({ NODE_ENV: 'development', TRUST_PROXY: proxy })).toThrow(/^JWT_SECRET is required when TRUST_PROXY is set/);
        expect(() => loadConfig({ NODE_ENV: 'development', TRUST_PROXY: proxy, JWT_SECRET: KNOWN_DEFAULT_SECRETS[0], ORDER_CURSOR_SECRET: KEY_B })).toThrow(/known default/);
        expect(loadConfig({ NODE_ENV: 'development', TRUST_PROXY: proxy, JWT_SECRET: KEY_A, ORDER_CURSOR_SECRET: KEY_B }).auth.jwtSecret).toBe(KEY_A);
      }
      expect(KNOWN_DEFAULT_SECRETS).toContain(loadConfig({ NODE_ENV: 'development', TRUST_PROXY: 'off' }).auth.jwtSecret);
    });

    it('when NODE_ENV=production, then HOST does not relax anything: a loopback bind still needs real keys', () => {
      expect(() => loadConfig({ NODE_ENV: 'production', HOST: '127.0.0.1' })).toThrow(/^JWT_SECRET is required when NODE_ENV=production/);
    });

    it('when the role cache is asked to outlive a minute, then start-up stops (a demoted admin must lose access within it)', () => {
      expect(loadConfig({}).auth.roleCacheMs).toBeLessThanOrEqual(60_000);
      expect(() => loadConfig({ AUTH_ROLE_CACHE_MS: '600000' })).toThrow(/^AUTH_ROLE_CACHE_MS must be an integer between 0 and 60000/);
      expect(loadConfig({}).auth).toMatchObject({ issuer: 'mallscale', audience: 'mallscale-shop-api', hashConcurrency: Math.max(1, Math.floor(availableParallelism() / 2)), hashQueueMax: 64 });
    });
  });

  it('when the bus silence bound is not longer than its heartbeat, then start-up stops (one late echo would clear L1 every beat)', () => {
    expect(loadConfig({}).cache).toMatchObject({ busHeartbeatMs: 1_000, busSilentMs: 3_000 });
    expect(loadConfig({ CACHE_BUS_HEARTBEAT_MS: '200' }).cache.busSilentMs).toBe(600);
    expect(() => loadConfig({ CACHE_BUS_HEARTBEAT_MS: '1000', CACHE_BUS_SILENT_MS: '1000' })).toThrow(/^CACHE_BUS_SILENT_MS must be longer than CACHE_BUS_HEARTBEAT_MS/);
  });
});
