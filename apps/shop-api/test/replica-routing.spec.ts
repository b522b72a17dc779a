/**
 * Replica routing over HTTP (non-destructive): X-Consistency-Token out on writes and honoured on reads,
 * the per-user token in redis-queue for clients that ignore headers, /health and /metrics.
 * The cache is off so every product read reaches ReplicaRouter.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { RedisClients } from '#libs/core';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let api: TestApi;
let admin: { token: string; id: string };
let code: string;

beforeAll(async () => {
  api = await startApi({ CACHE_MODE: 'off' });
  admin = await createAdmin(api);
  code = `rt-${randomUUID().slice(0, 8)}`;
  await api.app.get(DbNodes).primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'routing test', '{"type":"object"}')`, [code]);
});
afterAll(async () => {
  await api?.close();
});

const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = bearer(admin.token)) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

async function metricValue(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('PATCH /products/:id', () => {
  it('when an admin writes, then the response carries X-Consistency-Token and reads with it see the write, 100 times in a row', async () => {
    const created = await send('POST', '/products', { categoryCode: code, name: 'Token', priceCents: 100, stock: 1, attributes: {} });
    expect(created.status).toBe(201);
    const { id } = await json(created);
    expect(created.headers.get('x-consistency-token')).toMatch(/^\d+-\d+-\d+/);
    let stale = 0;
    for (let price = 101; price <= 200; price++) {
      const patched = await send('PATCH', `/products/${id}`, { priceCents: price });
      const token = patched.headers.get('x-consistency-token')!;
      const read = await json(await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': token } }));
      if (read.priceCents !== price) stale++;
    }
    expect(stale).toBe(0);
  });
});

describe('GET /products/:id', () => {
  it('when a signed-in user wrote and then reads without the header, then the token remembered for them in redis-queue is used', async () => {
    const { id } = await json(await send('POST', '/products', { categoryCode: code, name: 'Remember', priceCents: 1, stock: 1, attributes: {} }));
    const patched = await send('PATCH', `/products/${id}`, { name: 'Remembered' });
    const token = patched.headers.get('x-consistency-token');
    const remembered = await api.app.get(RedisClients).queue.get(`consistency:user:${admin.id}`);
    expect(remembered).toBe(token);
    const ttl = await api.app.get(RedisClients).queue.pttl(`consistency:user:${admin.id}`);
    expect(ttl).toBeGreaterThan(0);
    const res = await fetch(`${api.url}/products/${id}`, { headers: bearer(admin.token) });
    expect(res.headers.get('x-consistency-token')).toBe(token);
    expect((await json(res)).name).toBe('Remembered');
  });

  it('when the token header is malformed, then 400 in the error shape, never 500', async () => {
    for (const bad of ['nonsense', "0-1-1' OR 1=1", '1-2', 'x'.repeat(3000)]) {
      const res = await fetch(`${api.url}/categories`, { headers: { 'x-consistency-token': bad } });
      expect(res.status).toBe(400);
      const body = await json(res);
      expect(body.error).toMatchObject({ status: 400, code: 'bad_request' });
      expect(body.error.message).toMatch(/X-Consistency-Token must be/);
    }
  });

  it('when anonymous reads arrive without a token, then replicas serve them and /metrics counts reads per node', async () => {
    const { id } = await json(await send('POST', '/products', { categoryCode: code, name: 'Counted', priceCents: 1, stock: 1, attributes: {} }));
    const before = (await metricValue('db_reads_total', 'node="replica-1"')) + (await metricValue('db_reads_total', 'node="replica-2"'));
    for (let i = 0; i < 10; i++) expect([200, 404]).toContain((await fetch(`${api.url}/products/${id}`)).status);
    const after = (await metricValue('db_reads_total', 'node="replica-1"')) + (await metricValue('db_reads_total', 'node="replica-2"'));
    expect(after - before).toBeGreaterThanOrEqual(10);
  });
});

describe('GET /categories', () => {
  it('when listed with a token, then the category created just before is in the list', async () => {
    const newCode = `rt-${randomUUID().slice(0, 8)}`;
    const db = api.app.get(DbNodes);
    await db.primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'fresh', '{}')`, [newCode]);
    const token = await db.primary.dialect.gtidPosition(db.primary.ds);
    const list = await json(await fetch(`${api.url}/categories`, { headers: { 'x-consistency-token': token } }));
    expect(list.map((c: { code: string }) => c.code)).toContain(newCode);
  });
});

describe('GET /health', () => {
  it('when the replicas replicate, then each replica shows its routing state: in rotation, lag in ms and in transactions', async () => {
    const body = await json(await fetch(`${api.url}/health`));
    const replicas = body.nodes.filter((n: { role: string }) => n.role === 'replica');
    expect(replicas).toHaveLength(2);
    for (const r of replicas) {
      expect(r.routing).toMatchObject({ inRotation: true, reason: '' });
      expect(typeof r.routing.since).toBe('string');
    }
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/db_replica_in_rotation\{node="replica-1"\} 1/);
    expect(text).toMatch(/db_replica_lag_ms\{node="replica-2"\}/);
  });
});
