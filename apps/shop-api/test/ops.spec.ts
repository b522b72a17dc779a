import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { json, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api?.close();
});

describe('GET /health', () => {
  it('when every node runs, then 200 with each node ready and each replica lag shown', async () => {
    const res = await fetch(`${api.url}/health`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.status).toBe('ok');
    expect(body.nodes.map((n: any) => n.name)).toEqual(['primary', 'replica-1', 'replica-2', 'shard-0', 'shard-1', 'redis-cache', 'redis-queue']);
    for (const n of body.nodes) expect(n.ready).toBe(true);
    for (const r of body.nodes.filter((n: any) => n.role === 'replica')) expect(typeof r.lagSeconds).toBe('number');
  });
});

describe('GET /metrics', () => {
  it('exposes Prometheus text with the HTTP latency histogram by route', async () => {
    await fetch(`${api.url}/health/live`);
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/health\/live"/);
  });
});

describe('errors and request ids', () => {
  it('every response carries a request id, an unknown route answers the JSON error shape', async () => {
    const res = await fetch(`${api.url}/no/such/route`, { headers: { 'x-request-id': 'demo-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('demo-123');
    expect(await json(res)).toEqual({ error: { status: 404, code: 'not_found', message: 'Cannot GET /no/such/route', requestId: 'demo-123' } });
  });

  it('a body over the limit answers 413 in the same shape', async () => {
    const res = await fetch(`${api.url}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(res.status).toBe(413);
    expect((await json(res)).error.code).toBe('payload_too_large');
  });
});

describe('GET /docs', () => {
  it('serves the OpenAPI document', async () => {
    const res = await fetch(`${api.url}/docs-json`);
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/auth/sign-up', '/auth/sign-in', '/health', '/me']));
  });
});
