import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '#libs/core';

// A production config that starts (as in config.spec.ts): generated keys, explicit database URLs.
const PROD = {
  NODE_ENV: 'production',
  JWT_SECRET: '3f9c1e7a52b84d06a1e9c7f2b5d8e04a6c1f3b7d9e2a5c8f0b4d6e1a3c7f9b2d',
  ORDER_CURSOR_SECRET: 'a7d2f5c8e1b4a7d0c3f6e9b2a5d8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2',
  DB_PRIMARY_URL: 'mysql://app:9b1d7e0c4a@db-primary:3306/mallscale',
  DB_REPLICA_URLS: 'mysql://app:9b1d7e0c4a@db-replica-1:3306/mallscale',
  DB_SHARD_URLS: 'mysql://app:9b1d7e0c4a@db-shard-0:3306/mallscale,mysql://app:9b1d7e0c4a@db-shard-1:3306/mallscale',
};

describe('loadConfig: edge purge and the benchmark peer (issue 17)', () => {
  it('when nothing is set, then no edge is purged and no peer cache is loaded', () => {
    const c = loadConfig({});
    expect(c.edge).toEqual({ purgeUrls: [], purgeTimeoutMs: 1000 });
    expect(c.benchPeerCache).toBe('none');
  });

  it('when EDGE_PURGE_URLS lists edges, then each becomes its origin', () => {
    expect(loadConfig({ EDGE_PURGE_URLS: 'http://127.0.0.1:6081, http://varnish:80/' }).edge.purgeUrls).toEqual(['http://127.0.0.1:6081', 'http://varnish']);
  });

  it('when an EDGE_PURGE_URLS entry is not a bare http(s) base URL, then start-up stops naming the variable', () => {
    for (const bad of ['not a url', 'ftp://edge:21', 'http://user:pw@edge:6081', 'http://edge:6081/purge', 'http://edge:6081/?x=1']) {
      expect(() => loadConfig({ EDGE_PURGE_URLS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ EDGE_PURGE_URLS: bad })).toThrow(/^EDGE_PURGE_URLS/);
    }
    expect(() => loadConfig({ EDGE_PURGE_TIMEOUT_MS: '0' })).toThrow(/EDGE_PURGE_TIMEOUT_MS/);
  });

  it('when EDGE_PURGE_URLS is set without the invalidation bus (CACHE_MODE other than l1l2), then start-up stops and says why', () => {
    expect(() => loadConfig({ EDGE_PURGE_URLS: 'http://127.0.0.1:6081', CACHE_MODE: 'l2' })).toThrow(/EDGE_PURGE_URLS needs CACHE_MODE=l1l2/);
  });

  it('when BENCH_PEER_CACHE is asked for in production, then start-up refuses the benchmark baseline', () => {
    expect(loadConfig({ BENCH_PEER_CACHE: 'nest-cache-manager' }).benchPeerCache).toBe('nest-cache-manager');
    expect(loadConfig(PROD).benchPeerCache).toBe('none'); // the production config itself starts
    expect(() => loadConfig({ ...PROD, BENCH_PEER_CACHE: 'nest-cache-manager' })).toThrow(/^BENCH_PEER_CACHE is a benchmark baseline/);
    expect(() => loadConfig({ BENCH_PEER_CACHE: 'memcached' })).toThrow(/BENCH_PEER_CACHE/);
  });
});
