import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '#libs/core';

// The shape of `npm run stack -- up --redis sentinel` without starting a server: which nodes, on which ports,
// monitoring which primaries, with which settings. (The servers themselves are started, failed over and
// stopped for real by apps/shop-api/test/redis-sentinel.chaos.spec.ts and `npm run bench -- redis-failover`.)
interface SentinelNode {
  name: string;
  role: string;
  port: number;
  dir: string;
  dataDir: string;
  confFile: string;
  args: string[];
  writeConf(n: SentinelNode): void;
}
interface Topology {
  dir: string;
  groups: { role: string; masterName: string; primaryPort: number; replica: SentinelNode }[];
  nodes: SentinelNode[];
  downAfter: number;
  failoverTimeout: number;
}
let stack: { sentinelTopology(opts?: { dir?: string; ownPrimaries?: { cache: number; queue: number } }): Topology };
let dir: string;

beforeAll(async () => {
  stack = await import(pathToFileURL(join(repoRoot(), 'docker/local/stack.mjs')).href);
  dir = mkdtempSync(join(tmpdir(), 'stack-sentinel-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const conf = (n: SentinelNode) => {
  mkdirSync(n.dir, { recursive: true });
  n.writeConf(n);
  return readFileSync(n.confFile, 'utf8');
};

describe('stack.mjs up --redis sentinel', () => {
  it('when asked for the sentinel nodes, then the stack gets a replica per role on 6390/6391 following redis-cache/redis-queue, and 3 sentinels on 26379-26381', () => {
    const t = stack.sentinelTopology({ dir });
    expect(t.groups.map((g) => [g.masterName, g.primaryPort, g.replica.port])).toEqual([
      ['mallscale-cache', Number(process.env.STACK_PORT_REDIS_CACHE || 6380), 6390],
      ['mallscale-queue', Number(process.env.STACK_PORT_REDIS_QUEUE || 6381), 6391],
    ]);
    expect(t.nodes.map((n) => [n.name, n.port])).toEqual([
      ['redis-cache-replica', 6390],
      ['redis-queue-replica', 6391],
      ['sentinel-1', 26379],
      ['sentinel-2', 26380],
      ['sentinel-3', 26381],
    ]);
    expect(t.nodes.filter((n) => n.role === 'sentinel').every((n) => n.args.includes('--sentinel'))).toBe(true);
  });

  it('when the config files are written, then the queue replica never evicts and keeps an AOF, sentinels watch both masters on loopback with quorum 2 and the demo timeouts', () => {
    const t = stack.sentinelTopology({ dir, ownPrimaries: { cache: 16392, queue: 16393 } });
    const queueReplica = conf(t.nodes.find((n) => n.name === 'redis-queue-replica')!);
    expect(queueReplica).toMatch(/^replicaof 127\.0\.0\.1 16393$/m);
    expect(queueReplica).toMatch(/^maxmemory-policy noeviction$/m);
    expect(queueReplica).toMatch(/^appendonly yes$/m);
    expect(queueReplica).toMatch(/^bind 127\.0\.0\.1$/m);
    expect(conf(t.nodes.find((n) => n.name === 'redis-cache-replica')!)).toMatch(/^maxmemory-policy allkeys-lru$/m);
    const sentinel = conf(t.nodes.find((n) => n.name === 'sentinel-1')!);
    expect(sentinel).toMatch(/^bind 127\.0\.0\.1$/m);
    expect(sentinel).toMatch(/^sentinel monitor mallscale-cache 127\.0\.0\.1 16392 2$/m);
    expect(sentinel).toMatch(/^sentinel monitor mallscale-queue 127\.0\.0\.1 16393 2$/m);
    expect(sentinel).toMatch(new RegExp(`^sentinel down-after-milliseconds mallscale-queue ${t.downAfter}$`, 'm'));
    expect(sentinel).toMatch(new RegExp(`^sentinel failover-timeout mallscale-queue ${t.failoverTimeout}$`, 'm'));
    expect(t.nodes.map((n) => n.name)).toEqual(expect.arrayContaining(['redis-cache-primary', 'redis-queue-primary']));
  });

  it('when a config file exists, then it is left alone: after a failover Sentinel has rewritten it with the current master', () => {
    const t = stack.sentinelTopology({ dir: join(dir, 'again') });
    const s = t.nodes.find((n) => n.name === 'sentinel-2')!;
    mkdirSync(s.dir, { recursive: true });
    writeFileSync(s.confFile, 'sentinel monitor mallscale-queue 127.0.0.1 6391 2\n');
    s.writeConf(s);
    expect(readFileSync(s.confFile, 'utf8')).toBe('sentinel monitor mallscale-queue 127.0.0.1 6391 2\n');
  });
});
