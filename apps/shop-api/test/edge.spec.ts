import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, nativeStack, testAdminConfig, waitFor, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { insertProduct, metric } from './cache-support.js';
import { freePort } from '#libs/core';

// The edge tier on the real Varnish (Debian's varnishd, docker/varnish/mallscale.vcl, the launcher's site
// include: backend = this file's API, purgers ACL = 127.0.0.1 and ::1), a private instance on a port of its
// own. The API purges it through EdgePurger on the cache invalidation bus (EDGE_PURGE_URLS).
const CATEGORY = 'test-edge';
let api: TestApi;
let edge: { url: string; port: number; stop: () => Promise<void> };
let edgeDir: string;
let db: DbNodes;
let admin: { token: string };


/** One HTTP request from a chosen source address (127.0.0.2 is loopback too, but not in the purgers ACL). */
function rawRequest(url: string, method: string, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, localAddress, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const viaEdge = (path: string, headers: Record<string, string> = {}) => fetch(`${edge.url}${path}`, { headers });
/** A Varnish hit: X-Varnish carries this request's id and the id of the request that filled the copy. */
const isHit = (r: Response) => (r.headers.get('x-varnish') ?? '').trim().split(/\s+/).length === 2;
const patch = (id: string, body: unknown) =>
  fetch(`${api.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify(body) });

beforeAll(async () => {
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 2 });
  const edgePort = await freePort();
  api = await startApi({ CACHE_MODE: 'l1l2', CACHE_PREFIX: `edge-${randomUUID().slice(0, 8)}:`, EDGE_PURGE_URLS: `http://127.0.0.1:${edgePort}`, EDGE_PURGE_TIMEOUT_MS: '5000' });
  edgeDir = mkdtempSync(join(tmpdir(), 'mallscale-edge-'));
  edge = await (await nativeStack()).startEdge({ port: edgePort, backend: new URL(api.url).host, dir: edgeDir, memory: '16m' });
  admin = await createAdmin(api);
}, 120_000);

afterAll(async () => {
  await edge?.stop();
  if (edgeDir) rmSync(edgeDir, { recursive: true, force: true });
  await api?.close();
  await db?.close();
});

describe('edge tier (Varnish in front of shop-api)', () => {
  it('when an anonymous product read goes through the edge twice, then the second is answered by Varnish (X-Varnish hit, Age, X-Edge: hit)', async () => {
    const id = await insertProduct(db, CATEGORY, `edge-hit-${randomUUID()}`, 1234);
    const first = await viaEdge(`/products/${id}`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-edge')).toBe('miss');
    expect(isHit(first)).toBe(false);
    const second = await viaEdge(`/products/${id}`);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-edge')).toBe('hit');
    expect(isHit(second)).toBe(true);
    expect(Number(second.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(await json(second)).toMatchObject({ id, priceCents: 1234 });
    // A hit gets its own request id, not the one of the request that filled the copy.
    expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
  });

  it('when a product is PATCHed through the API, then the edge is purged from the invalidation bus and the next edge read shows the new version', async () => {
    const id = await insertProduct(db, CATEGORY, `edge-purge-${randomUUID()}`, 1000);
    await viaEdge(`/products/${id}`);
    const cached = await viaEdge(`/products/${id}`);
    expect(isHit(cached)).toBe(true);
    const before = { sent: await metric(api.url, 'edge_purge_requests_total'), failed: await metric(api.url, 'edge_purge_failures_total') };
    const res = await patch(id, { priceCents: 2000 });
    expect(res.status).toBe(200);
    const written = await json(res);
    // PURGE of the product + BAN of the list pages, both done (the counter rises when the edge has answered), none failed.
    await waitFor(async () => (await metric(api.url, 'edge_purge_requests_total')) >= before.sent + 2, 20_000, 20);
    expect(await metric(api.url, 'edge_purge_failures_total')).toBe(before.failed);
    const fresh = await viaEdge(`/products/${id}`);
    expect(fresh.headers.get('x-edge')).toBe('miss');
    expect(await json(fresh)).toMatchObject({ id, priceCents: 2000, version: written.version });
    const again = await viaEdge(`/products/${id}`);
    expect(isHit(again)).toBe(true);
    expect(await json(again)).toMatchObject({ priceCents: 2000 });
  });

  it('when a category list page is cached at the edge and one of its products is written, then the page is banned and shows the new version', async () => {
    const code = `test-edge-${randomUUID().slice(0, 8)}`;
    const id = await insertProduct(db, code, `edge-list-${randomUUID()}`, 500);
    await viaEdge(`/categories/${code}/products`);
    expect(isHit(await viaEdge(`/categories/${code}/products`))).toBe(true);
    const before = await metric(api.url, 'edge_purge_requests_total');
    expect((await patch(id, { priceCents: 501 })).status).toBe(200);
    await waitFor(async () => (await metric(api.url, 'edge_purge_requests_total')) >= before + 2, 20_000, 20);
    const page = await viaEdge(`/categories/${code}/products`);
    expect(page.headers.get('x-edge')).toBe('miss');
    expect((await json(page)).items).toEqual([expect.objectContaining({ id, priceCents: 501 })]);
  });

  it('when a request carries Authorization, a Cookie or X-Consistency-Token, then it is never served from the edge', async () => {
    const id = await insertProduct(db, CATEGORY, `edge-private-${randomUUID()}`);
    await viaEdge(`/products/${id}`);
    expect(isHit(await viaEdge(`/products/${id}`))).toBe(true); // an anonymous copy is there
    for (const headers of [bearer(admin.token), { cookie: 'session=abc' }, { 'x-consistency-token': 'anything' }]) {
      for (let k = 0; k < 2; k++) {
        const r = await viaEdge(`/products/${id}`, headers);
        await r.arrayBuffer();
        expect({ headers: Object.keys(headers), edge: r.headers.get('x-edge'), hit: isHit(r) }).toEqual({ headers: Object.keys(headers), edge: 'miss', hit: false });
      }
    }
  });

  it('when a route other than an anonymous product read goes through the edge, then it is passed every time', async () => {
    for (let k = 0; k < 2; k++) {
      const r = await viaEdge('/health/live');
      await r.arrayBuffer();
      expect(isHit(r)).toBe(false);
    }
    const withQuery = await viaEdge('/products/1?x=1');
    await withQuery.arrayBuffer();
    expect(isHit(await viaEdge('/products/1?x=1'))).toBe(false);
  });

  it('when PURGE or BAN comes from a client outside the purgers ACL (source 127.0.0.2), then the edge refuses it with 403 and keeps its copy', async () => {
    const id = await insertProduct(db, CATEGORY, `edge-acl-${randomUUID()}`);
    await viaEdge(`/products/${id}`);
    const purge = await rawRequest(`${edge.url}/products/${id}`, 'PURGE', '127.0.0.2');
    expect(purge.status).toBe(403);
    expect(JSON.parse(purge.body)).toMatchObject({ error: { status: 403, code: 'forbidden' } });
    const ban = await rawRequest(`${edge.url}/`, 'BAN', '127.0.0.2', { 'x-ban-url': '^/' });
    expect(ban.status).toBe(403);
    expect(isHit(await viaEdge(`/products/${id}`))).toBe(true);
    // The same PURGE from 127.0.0.1 (the ACL's address) is obeyed: the refusal above was the ACL.
    expect((await rawRequest(`${edge.url}/products/${id}`, 'PURGE', '127.0.0.1')).status).toBe(200);
    expect(isHit(await viaEdge(`/products/${id}`))).toBe(false);
  });

  it('when BAN comes without X-Ban-Url or with an unanchored one, then the edge answers 400 in the JSON error shape', async () => {
    for (const headers of [{}, { 'x-ban-url': '.*' }] as Array<Record<string, string>>) {
      const r = await rawRequest(`${edge.url}/`, 'BAN', '127.0.0.1', headers);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ error: { status: 400, code: 'bad_request' } });
    }
  });

  it('when the edge is down, then a product write still succeeds and the failed purge is counted', async () => {
    const deadPort = await freePort();
    const other = await startApi({ CACHE_MODE: 'l1l2', CACHE_PREFIX: `edge-down-${randomUUID().slice(0, 8)}:`, EDGE_PURGE_URLS: `http://127.0.0.1:${deadPort}`, EDGE_PURGE_TIMEOUT_MS: '2000' });
    try {
      const otherAdmin = await createAdmin(other);
      const id = await insertProduct(db, CATEGORY, `edge-down-${randomUUID()}`, 700);
      const res = await fetch(`${other.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(otherAdmin.token) }, body: JSON.stringify({ priceCents: 701 }) });
      expect(res.status).toBe(200);
      expect(await json(res)).toMatchObject({ priceCents: 701 });
      // PURGE and BAN both refused by a closed port: two failures, counted, and the write went on.
      expect(await waitFor(async () => ((await metric(other.url, 'edge_purge_failures_total')) >= 2 ? true : undefined), 20_000, 20)).toBe(true);
    } finally {
      await other.close();
    }
  });
});
