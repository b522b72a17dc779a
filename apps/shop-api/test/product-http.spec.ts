import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DbNodes, ReplicaMonitor } from '#libs/db';
import { bearer, createAdmin, json, testAdminConfig, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { countedAccount, insertProduct, metric, type CountedAccount } from './cache-support.js';

// HTTP caching of product reads (issue 17): ETag / If-None-Match → 304, Cache-Control by who asks, on the
// hot route (anonymous reads, answered before Nest) and on the Nest route (reads with a user's token).
// `api`: l1l2 with the default freshness; `l2`: CACHE_MODE=l2 (no L1: the response is encoded per request)
// with max-age and stale-while-revalidate 0.
const CATEGORY = 'test-http-cache';
let api: TestApi;
let l2: TestApi;
let db: DbNodes;
let account: CountedAccount;
let admin: { token: string };

beforeAll(async () => {
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 4 });
  account = await countedAccount(db, { CACHE_MODE: 'l1l2', CACHE_L1_TTL_MS: '60000', CACHE_REDIS_TIMEOUT_MS: '5000' });
  api = await startApi(account.env);
  l2 = await startApi({ ...account.env, CACHE_MODE: 'l2', CACHE_HTTP_MAX_AGE_S: '0', CACHE_HTTP_SWR_S: '0' });
  await Promise.all([api, l2].map((x) => x.app.get(ReplicaMonitor).stop()));
  admin = await createAdmin(api);
}, 120_000);

afterAll(async () => {
  await api?.close();
  await l2?.close();
  await account?.drop();
  await db?.close();
});

const get = (on: TestApi, id: string, headers: Record<string, string> = {}) => fetch(`${on.url}/products/${id}`, { headers });
const patch = (id: string, body: unknown) =>
  fetch(`${api.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify(body) });

describe('GET /products/:id (HTTP caching)', () => {
  it('when If-None-Match carries the current ETag, then 304 without a body, with the same validators, and no query', async () => {
    const id = await insertProduct(db, CATEGORY, `etag-${randomUUID()}`, 1500);
    const first = await get(api, id);
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"1-[A-Za-z0-9_-]{12}"$/); // strong: version 1, then a hash of the bytes
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await json(first)).toMatchObject({ id, priceCents: 1500, version: 1 });
    const before = await account.selects();
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const res = await get(api, id, { 'if-none-match': inm, 'x-request-id': `inm-${id}` });
      expect({ inm, status: res.status }).toEqual({ inm, status: 304 });
      expect(await res.text()).toBe('');
      expect(res.headers.get('etag')).toBe(etag);
      expect(res.headers.get('cache-control')).toBe('public, max-age=5, stale-while-revalidate=10');
      expect(res.headers.get('x-cache')).toBe('l1');
      expect(res.headers.get('x-request-id')).toBe(`inm-${id}`);
    }
    expect(await account.selects()).toBe(before);
    // The hot route's answers are counted by the latency histogram under the route's name.
    expect(await metric(api.url, 'http_request_duration_seconds_count', 'route="/products/:id",status="304"')).toBeGreaterThanOrEqual(4);
  });

  it('when the product was changed by a PATCH, then the old ETag gets a 200 with the new body and a new ETag', async () => {
    const id = await insertProduct(db, CATEGORY, `etag-upd-${randomUUID()}`, 1000);
    const old = (await get(api, id)).headers.get('etag')!;
    expect((await get(api, id, { 'if-none-match': old })).status).toBe(304);
    expect((await patch(id, { priceCents: 2500 })).status).toBe(200);
    const res = await get(api, id, { 'if-none-match': old });
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag')!;
    expect(etag).not.toBe(old);
    expect(etag.startsWith('"2-')).toBe(true);
    expect(await json(res)).toMatchObject({ id, priceCents: 2500, version: 2 });
    expect((await get(api, id, { 'if-none-match': etag })).status).toBe(304);
  });

  it('when a read is anonymous, then public with max-age and stale-while-revalidate; with a bearer token or a consistency token, then private, no-store', async () => {
    const id = await insertProduct(db, CATEGORY, `cc-${randomUUID()}`);
    const anon = await get(api, id);
    expect(anon.headers.get('cache-control')).toBe('public, max-age=5, stale-while-revalidate=10');
    expect(anon.headers.get('vary')).toBe('Authorization, X-Consistency-Token');
    const etag = anon.headers.get('etag')!;

    const authed = await get(api, id, bearer(admin.token));
    expect(authed.status).toBe(200);
    expect(authed.headers.get('cache-control')).toBe('private, no-store');
    expect(authed.headers.get('vary')).toBe('Authorization, X-Consistency-Token');
    expect(authed.headers.get('etag')).toBe(etag); // the same bytes through the Nest route
    expect(await json(authed)).toMatchObject({ id });
    const revalidated = await get(api, id, { ...bearer(admin.token), 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('cache-control')).toBe('private, no-store');
    expect(await revalidated.text()).toBe('');

    const written = await patch(id, { name: `cc-renamed-${randomUUID()}` });
    const token = written.headers.get('x-consistency-token');
    expect(token).toBeTruthy();
    const rywr = await get(api, id, { 'x-consistency-token': token! });
    expect(rywr.status).toBe(200);
    expect(rywr.headers.get('cache-control')).toBe('private, no-store');
    expect(rywr.headers.get('x-consistency-token')).toBeTruthy(); // the interceptor still runs on this path
    expect(await json(rywr)).toMatchObject({ id, version: 2 });
  });

  it('when If-None-Match is malformed, then it is ignored: 200 with the body, never a 4xx or 500', async () => {
    const id = await insertProduct(db, CATEGORY, `inm-bad-${randomUUID()}`);
    const etag = (await get(api, id)).headers.get('etag')!;
    const bare = etag.slice(1, -1); // the tag without its quotes
    const junk = ['', 'nonsense', bare, `W/${bare}`, '"', '""', 'W/', ',,,', `"${bare}`, `${etag}x`, 'W/"x", "y"', `"${'a'.repeat(8000)}"`, `${'"x", '.repeat(1000)}${etag}`];
    for (const inm of junk) {
      for (const headers of [{ 'if-none-match': inm }, { ...bearer(admin.token), 'if-none-match': inm }]) {
        const res = await get(api, id, headers);
        expect({ inm: inm.slice(0, 40), status: res.status }).toEqual({ inm: inm.slice(0, 40), status: 200 });
        expect(await json(res)).toMatchObject({ id });
      }
    }
  });

  it('when the instance has no L1 (CACHE_MODE=l2) and no freshness, then the same ETag, 304 on it, and public, no-cache', async () => {
    const id = await insertProduct(db, CATEGORY, `l2-${randomUUID()}`);
    const a = await get(api, id);
    const b = await get(l2, id);
    expect(b.headers.get('etag')).toBe(a.headers.get('etag'));
    expect(b.headers.get('cache-control')).toBe('public, no-cache');
    expect(await b.text()).toBe(await a.text()); // byte for byte
    const res = await get(l2, id, { 'if-none-match': a.headers.get('etag')! });
    expect(res.status).toBe(304);
    expect(res.headers.get('x-cache')).toBe('l2');
  });

  it('when the product does not exist or the id is malformed, then 404 / 400 in the error shape from the hot route too', async () => {
    const absent = await get(api, '8999999999998', { 'x-request-id': 'absent-1' });
    expect(absent.status).toBe(404);
    expect((await json(absent)).error).toMatchObject({ status: 404, code: 'not_found', requestId: 'absent-1' });
    expect(absent.headers.get('etag')).toBeNull();
    const bad = await get(api, 'abc', { 'if-none-match': '*' });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatchObject({ status: 400, code: 'bad_request' });
  });
});
