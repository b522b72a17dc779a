import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createAdmin, json, signUp, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let api: TestApi;
let admin: { token: string };
beforeAll(async () => {
  api = await startApi();
  admin = await createAdmin(api);
  await api.app.get((await import('#libs/db')).DbNodes).primary.ds.query(
    `INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-gadget', 'Test gadgets', '{"type":"object"}')`,
  );
});
afterAll(async () => {
  await api?.close();
});

const send = (method: string, path: string, body?: unknown, token = admin.token) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...bearer(token) }, body: body === undefined ? undefined : JSON.stringify(body) });

describe('products', () => {
  it('when an admin creates, updates and deletes a product, then reads follow, and the version bumps', async () => {
    const created = await json(await send('POST', '/products', { categoryCode: 'test-gadget', name: 'Gizmo', priceCents: 1999, stock: 5, attributes: { color: 'red' } }));
    expect(created).toMatchObject({ name: 'Gizmo', priceCents: 1999, stock: 5, attributes: { color: 'red' }, version: 1, categoryCode: 'test-gadget' });
    expect(typeof created.id).toBe('string');
    const patched = await json(await send('PATCH', `/products/${created.id}`, { priceCents: 2499 }));
    expect(patched).toMatchObject({ priceCents: 2499, version: 2 });
    // Reads go to replicas; the admin's bearer makes them read-your-writes (token remembered per user).
    expect(await json(await fetch(`${api.url}/products/${created.id}`, { headers: bearer(admin.token) }))).toMatchObject({ priceCents: 2499 });
    expect((await send('DELETE', `/products/${created.id}`)).status).toBe(204);
    expect((await fetch(`${api.url}/products/${created.id}`, { headers: bearer(admin.token) })).status).toBe(404);
  });

  it('when the id is unknown, malformed or negative, then 404 / 400, never 500', async () => {
    expect((await fetch(`${api.url}/products/999999999999`)).status).toBe(404);
    for (const bad of ['abc', '-1', '0', '1.5', '99999999999999999999', "1'%20OR%201=1"]) {
      const res = await fetch(`${api.url}/products/${bad}`);
      expect(res.status).toBe(400);
      expect((await json(res)).error.code).toBe('bad_request');
    }
  });

  it('when a plain user writes, then 403; when the category is unknown, then 422', async () => {
    const user = await signUp(api);
    expect((await send('POST', '/products', { categoryCode: 'test-gadget', name: 'X', priceCents: 1, stock: 1, attributes: {} }, user.token)).status).toBe(403);
    const res = await send('POST', '/products', { categoryCode: 'no-such', name: 'X', priceCents: 1, stock: 1, attributes: {} });
    expect(res.status).toBe(422);
  });
});
