import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DbNodes } from '#libs/db';
import { json, testConfig, waitFor, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { insertProduct, metric } from './cache-support.js';

// A PRIVATE redis-server (own port, own dir) plays redis-cache, so stopping it for real disturbs no other test.
let redisProc: ChildProcess | null = null;
let port = 0;
let dir = '';
let api: TestApi;
let db: DbNodes;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis(): Promise<void> {
  redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await waitFor(
    async () =>
      new Promise<boolean>((resolve) => {
        const sock = createConnection(port, '127.0.0.1', () => {
          sock.end();
          resolve(true);
        });
        sock.on('error', () => resolve(false));
      }),
    20_000,
  );
}

async function stopRedis(): Promise<void> {
  const proc = redisProc;
  redisProc = null;
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 4 });
  dir = mkdtempSync(join(tmpdir(), 'mallscale-redis-chaos-'));
  port = await freePort();
  await startRedis();
  api = await startApi({
    REDIS_CACHE_URL: `redis://127.0.0.1:${port}`,
    CACHE_PREFIX: `chaos-${randomUUID().slice(0, 8)}:`,
    CACHE_MODE: 'l1l2',
    CACHE_L1_TTL_MS: '1', // reads go to L2 every time, so the test sees Redis go and come back
    CACHE_BREAKER_COOLDOWN_MS: '200',
  });
}, 120_000);

afterAll(async () => {
  await api?.close();
  await stopRedis();
  await db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GET /products/:id with redis-cache down', () => {
  it('when Redis is stopped mid-test, then every read is 200 from the database; when it is back, then reads hit L2 again', async () => {
    const id = await insertProduct(db, 'test-cache-chaos', `chaos-${randomUUID()}`, 777);
    await waitFor(async () => (await fetch(`${api.url}/products/${id}`)).headers.get('x-cache') === 'l2', 20_000);

    await stopRedis();
    const statuses: number[] = [];
    const tiers = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${api.url}/products/${id}`);
      statuses.push(res.status);
      tiers.add(res.headers.get('x-cache') ?? '');
      expect(await json(res)).toMatchObject({ id, priceCents: 777 });
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(tiers).toContain('db');
    expect(await metric(api.url, 'cache_redis_bypass_total')).toBeGreaterThan(0);
    expect(await metric(api.url, 'cache_redis_breaker_state', 'state="open"') + (await metric(api.url, 'cache_redis_breaker_state', 'state="half-open"'))).toBe(1);

    await startRedis(); // an empty Redis on the same port: ioredis reconnects, the breaker's probe closes it
    await waitFor(async () => {
      const res = await fetch(`${api.url}/products/${id}`);
      expect(res.status).toBe(200);
      return res.headers.get('x-cache') === 'l2';
    }, 30_000, 100);
    expect(await metric(api.url, 'cache_redis_breaker_state', 'state="closed"')).toBe(1);
  }, 120_000);
});
