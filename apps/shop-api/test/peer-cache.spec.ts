import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DbNodes, ReplicaMonitor } from '#libs/db';
import { bearer, createAdmin, json, testAdminConfig, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { countedAccount, insertProduct, type CountedAccount } from './cache-support.js';

// The benchmark's peer baseline (BENCH_PEER_CACHE=nest-cache-manager, our cache off): proves it is wired as the
// docs say, so the hot-products numbers compare what they claim. SELECTs counted on the server, as cache.spec.ts.
const CATEGORY = 'test-peer';
let api: TestApi;
let db: DbNodes;
let account: CountedAccount;
let admin: { token: string };

beforeAll(async () => {
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 2 });
  account = await countedAccount(db, { CACHE_MODE: 'off', BENCH_PEER_CACHE: 'nest-cache-manager' });
  api = await startApi(account.env);
  await api.app.get(ReplicaMonitor).stop();
  admin = await createAdmin(api);
}, 120_000);

afterAll(async () => {
  await api?.close();
  await account?.drop();
  await db?.close();
});

describe('the peer baseline (@nestjs/cache-manager CacheInterceptor on Redis)', () => {
  it('when a product is read twice, then the database runs 1 query: the second answer comes from the peer cache', async () => {
    const id = await insertProduct(db, CATEGORY, `peer-${randomUUID()}`, 3100);
    const before = await account.selects();
    const first = await fetch(`${api.url}/products/${id}`);
    expect(await json(first)).toMatchObject({ id, priceCents: 3100 });
    expect(first.headers.get('x-cache')).toBe('db'); // our cache is off: the controller ran
    const second = await fetch(`${api.url}/products/${id}`);
    expect(await json(second)).toMatchObject({ id, priceCents: 3100 });
    expect(second.headers.get('x-cache')).toBe('HIT'); // the interceptor's own header: answered before the controller ran
    expect((await account.selectsReaching(before + 1)) - before).toBe(1);
  });

  it('when the product is PATCHed, then the peer keeps serving the old version (it is never told about writes)', async () => {
    const id = await insertProduct(db, CATEGORY, `peer-stale-${randomUUID()}`, 1000);
    await (await fetch(`${api.url}/products/${id}`)).arrayBuffer();
    const res = await fetch(`${api.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ priceCents: 1001 }) });
    expect(await json(res)).toMatchObject({ priceCents: 1001 });
    expect(await json(await fetch(`${api.url}/products/${id}`))).toMatchObject({ priceCents: 1000 });
  });
});
