import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { CATEGORY_DEFINITIONS } from '#libs/attributes';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, waitFor, type TestApi } from '#libs/testing';
import { AttributesService } from '../src/catalog/attributes.service.js';
import { FiltersService } from '../src/catalog/filters.service.js';
import { startApi } from './support.js';

// Each run owns two categories with unique codes (copies of the seeded food and laptop schemas); afterAll
// drops the generated columns it added, so the shared test products table does not collect them.
const tag = randomUUID().slice(0, 8);
const FOOD = `tattr-food-${tag}`;
const LAPTOP = `tattr-laptop-${tag}`;
const def = (code: string) => structuredClone(CATEGORY_DEFINITIONS.find((c) => c.code === code)!.schema);

let api: TestApi;
let db: DbNodes;
let admin: { token: string };
const cat: Record<string, number> = {};

const send = (method: string, path: string, body?: unknown, token = admin.token) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...bearer(token) }, body: body === undefined ? undefined : JSON.stringify(body) });
// Reads carry the admin's bearer: the API remembers its last write (consistency token), so a replica read sees it.
const get = (path: string) => fetch(`${api.url}${path}`, { headers: bearer(admin.token) });
const doc = (v: unknown): any => (typeof v === 'string' ? JSON.parse(v) : v);
const create = async (categoryCode: string, attributes: Record<string, unknown>, priceCents = 1000) => {
  const res = await send('POST', '/products', { categoryCode, name: `p-${tag}`, priceCents, stock: 5, attributes });
  if (res.status !== 201) throw new Error(`create failed ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; attributes: Record<string, unknown> };
};
const promote = async (code: string, name: string) => {
  const res = await send('POST', `/admin/categories/${code}/attributes/${name}/promote`);
  if (res.status !== 201) throw new Error(`promote failed ${res.status} ${await res.text()}`);
  return json(res);
};
const ids = async (path: string) => ((await json(await get(path))).items as { id: string }[]).map((p) => p.id);
/** A fingerprint of the category's rows and of the schema objects an injection could touch. */
const fingerprint = async () => ({
  rows: await db.primary.ds.query('SELECT id, name, price_cents, attributes, version FROM products WHERE category_id IN (?, ?) ORDER BY id', [cat[FOOD], cat[LAPTOP]]),
  columns: (await db.primary.ds.query("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'products' AND (COLUMN_NAME NOT LIKE 'attr\\_%' OR COLUMN_NAME LIKE ? OR COLUMN_NAME LIKE ?) ORDER BY 1", [`attr\\_${cat[FOOD]}\\_%`, `attr\\_${cat[LAPTOP]}\\_%`])).map((r: any) => r.c),
  tables: (await db.primary.ds.query('SHOW TABLES')).length,
  categories: await db.primary.ds.query('SELECT code, attribute_schema FROM categories WHERE id IN (?, ?) ORDER BY id', [cat[FOOD], cat[LAPTOP]]),
});

beforeAll(async () => {
  api = await startApi();
  db = api.app.get(DbNodes);
  admin = await createAdmin(api);
  for (const [code, from] of [
    [FOOD, 'food'],
    [LAPTOP, 'laptop'],
  ]) {
    const res = await db.primary.ds.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?)', [code, code, JSON.stringify(def(from))]);
    cat[code] = Number(res.insertId);
  }
  // Index what the schemas mark x-filterable (what `npm run seed` does for the real categories).
  for (const a of ['expiryDate', 'storage', 'weightG', 'allergens']) await promote(FOOD, a);
  for (const a of ['cpu', 'ramGb', 'storageGb']) await promote(LAPTOP, a);
}, 120000);

afterAll(async () => {
  if (db) {
    for (const [code, id] of Object.entries(cat)) {
      for (const { attribute } of await db.primary.ds.query('SELECT attribute FROM attribute_indexes WHERE category_id = ?', [id])) {
        await send('DELETE', `/admin/categories/${code}/attributes/${attribute}/index`);
      }
      await db.primary.ds.query('DELETE FROM products WHERE category_id = ?', [id]);
      await db.primary.ds.query('DELETE FROM categories WHERE id = ?', [id]);
    }
  }
  await api?.close();
}, 120000);

describe('POST /products (attribute schemas)', () => {
  it('when food and laptop attributes match their schemas, then 201 and the document is stored as sent', async () => {
    const food = await create(FOOD, { expiryDate: '2031-02-03', storage: 'chilled', weightG: 250, allergens: ['milk', 'egg'] });
    expect(food.attributes).toEqual({ expiryDate: '2031-02-03', storage: 'chilled', weightG: 250, allergens: ['milk', 'egg'] });
    const laptop = await create(LAPTOP, { cpu: 'M4', ramGb: 16, storageGb: 512, screenInch: 14.2 });
    expect(laptop.attributes).toMatchObject({ cpu: 'M4', screenInch: 14.2 });
  });

  it('when the attributes are wrong in several ways, then 422 names every bad field with its reason and nothing is stored', async () => {
    const before = await fingerprint();
    const res = await send('POST', '/products', {
      categoryCode: FOOD,
      name: 'bad',
      priceCents: 1,
      stock: 1,
      attributes: { expiryDate: '2031-02-30', storage: 'warm', weightG: 0, allergens: ['milk', 'milk', 'gluten'], colour: 'red' },
    });
    expect(res.status).toBe(422);
    const body = await json(res);
    expect(body.error.code).toBe('validation_failed');
    const byField = Object.fromEntries(body.error.details.map((d: { field: string; problems: string[] }) => [d.field, d.problems.join('; ')]));
    expect(Object.keys(byField).sort()).toEqual(['allergens', 'allergens[2]', 'colour', 'expiryDate', 'storage', 'weightG']);
    expect(byField.storage).toMatch(/room, chilled, frozen/);
    expect(byField.weightG).toMatch(/>= 1 g/);
    expect(byField.colour).toMatch(/unknown attribute/);
    expect(byField.expiryDate).toMatch(/date/);
    const missing = await json(await send('POST', '/products', { categoryCode: LAPTOP, name: 'bad', priceCents: 1, stock: 1, attributes: { cpu: 'M4', ramGb: '16' } }));
    expect(missing.error.details).toEqual(
      expect.arrayContaining([
        { field: 'storageGb', problems: ['is required'] },
        { field: 'ramGb', problems: ['must be integer'] },
      ]),
    );
    expect(await fingerprint()).toEqual(before);
  });

  it('when PATCH sends attributes that break the schema, then 422 and the product is unchanged; valid ones replace the document', async () => {
    const p = await create(LAPTOP, { cpu: 'i5', ramGb: 8, storageGb: 256 });
    const res = await send('PATCH', `/products/${p.id}`, { attributes: { cpu: 'Z80', ramGb: 8, storageGb: 256 } });
    expect(res.status).toBe(422);
    expect((await json(res)).error.details[0].field).toBe('cpu');
    expect(doc((await db.primary.ds.query('SELECT attributes FROM products WHERE id = ?', [p.id]))[0].attributes).cpu).toBe('i5');
    expect((await send('PATCH', `/products/${p.id}`, { attributes: { cpu: 'i7', ramGb: 8, storageGb: 256 } })).status).toBe(200);
  });
});

describe('GET /products (attribute filters)', () => {
  it('when filtering laptops by ramGb[gte] and cpu[in], then exactly the matching products, in price order, across cursor pages', async () => {
    const made = [];
    for (const [i, [cpu, ramGb]] of ([['M3', 16], ['M4', 32], ['M4', 8], ['i7', 64], ['M3', 64], ['M4', 16]] as const).entries()) {
      made.push({ ...(await create(LAPTOP, { cpu, ramGb, storageGb: 777 }, 5000 - i * 100)), cpu, ramGb, price: 5000 - i * 100 });
    }
    const want = made.filter((p) => p.ramGb >= 16 && ['M3', 'M4'].includes(p.cpu)).sort((a, b) => a.price - b.price).map((p) => p.id);
    const first = await json(await get(`/products?category=${LAPTOP}&attr.storageGb=777&attr.ramGb[gte]=16&attr.cpu[in]=M3,M4&sort=price&limit=2`));
    expect(first.filters).toEqual([
      { attribute: 'storageGb', op: 'eq', values: [777] },
      { attribute: 'ramGb', op: 'gte', values: [16] },
      { attribute: 'cpu', op: 'in', values: ['M3', 'M4'] },
    ]);
    const seen = first.items.map((p: { id: string }) => p.id);
    let cursor = first.nextCursor;
    while (cursor) {
      const page = await json(await get(`/products?category=${LAPTOP}&attr.storageGb=777&attr.ramGb[gte]=16&attr.cpu[in]=M3,M4&sort=price&limit=2&cursor=${cursor}`));
      seen.push(...page.items.map((p: { id: string }) => p.id));
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(want);
    expect(await ids(`/products?category=${LAPTOP}&attr.storageGb=777&attr.ramGb[between]=32,64&attr.cpu=M3`)).toEqual(made.filter((p) => p.cpu === 'M3' && p.ramGb >= 32).map((p) => p.id));
  });

  it('when filtering food by allergens[contains] and a date range, then the child-table values follow creates, updates and deletes', async () => {
    const a = await create(FOOD, { expiryDate: '2040-01-10', storage: 'frozen', weightG: 100, allergens: ['peanut', 'soy'] });
    const b = await create(FOOD, { expiryDate: '2040-01-20', storage: 'frozen', weightG: 100, allergens: ['soy'] });
    const q = (f: string) => ids(`/products?category=${FOOD}&attr.expiryDate[between]=2040-01-01,2040-01-31&${f}`);
    expect(await q('attr.allergens[contains]=soy')).toEqual([a.id, b.id]);
    expect(await q('attr.allergens[contains]=peanut,soy')).toEqual([a.id]);
    await send('PATCH', `/products/${b.id}`, { attributes: { expiryDate: '2040-01-20', storage: 'frozen', weightG: 100, allergens: ['peanut'] } });
    expect(await q('attr.allergens[contains]=peanut')).toEqual([a.id, b.id]);
    await send('DELETE', `/products/${a.id}`);
    expect(await q('attr.allergens[contains]=peanut')).toEqual([b.id]);
    expect(await q('attr.expiryDate[lte]=2040-01-15')).toEqual([]);
  });

  it('when the filter SQL is EXPLAINed, then it reads the generated-column index', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => [cat[LAPTOP], `bulk-${tag}`, 100 + i, 1, JSON.stringify({ cpu: 'i5', ramGb: 8 + (i % 40), storageGb: 100 + i })]);
    await db.primary.ds.query(`INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`, rows.flat());
    const filters = api.app.get(FiltersService);
    const q = await filters.buildQuery({ category: LAPTOP, 'attr.storageGb[between]': '150,152' }, db.primary.ds);
    const plan = await db.primary.ds.query(`EXPLAIN ${q.sql}`, q.params);
    expect(plan.find((r: any) => r.table === 'p').key).toBe(`ix_attr_${cat[LAPTOP]}_storageGb`);
    // Inserted with SQL (no consistency token): a replica shows them once it has applied the insert.
    await waitFor(async () => (await ids(`/products?category=${LAPTOP}&attr.storageGb[between]=150,152`)).length === 3, 30000);
  });

  it('when the attribute, operator or value is not allowed, then 400 naming what is allowed', async () => {
    const err = async (qs: string) => {
      const res = await get(`/products?category=${LAPTOP}&${qs}`);
      expect(res.status).toBe(400);
      return (await json(res)).error.message as string;
    };
    expect(await err('attr.gpu=x')).toMatch(/filterable: cpu, ramGb, storageGb/);
    expect(await err('attr.screenInch[gte]=13')).toMatch(/not filterable/);
    expect(await err('attr.cpu[gte]=M3')).toMatch(/allowed: eq, in/);
    expect(await err('attr.cpu=Z80')).toMatch(/M3, M4/);
    expect(await err('attr.ramGb[between]=64,16')).toMatch(/low must not exceed high/);
    expect(await err('attr.ramGb=sixteen')).toMatch(/not an integer/);
    expect(await err('colour=red')).toMatch(/unknown query parameter/);
    expect((await get('/products?attr.cpu=M3')).status).toBe(400);
  });

  it('when attribute names, operators and values carry injection attempts, then 400 every time and nothing changes', async () => {
    const before = await fingerprint();
    const hostile = [
      "attr.cpu'%20OR%201=1--",
      'attr.cpu%5Beq%5D%20OR%201=1',
      'attr.%24.cpu=M3',
      'attr.cpu..x=M3',
      'attr.a%2F*%2A%2F=1',
      'attr.ramGb%5Bgte%5D%3B%20DROP%20TABLE%20products%3B--=1',
      "attr.ramGb%5Bgte'%5D=1",
      'attr.ramGb[gte]=1%20OR%201%3D1',
      "attr.ramGb[gte]=1'%3B%20DROP%20TABLE%20products%3B%20--",
      "attr.cpu=M3'%20OR%20'1'='1",
      'attr.cpu[in]=M3,M4)%20OR%20(1=1',
      'attr.cpu=%24.cpu',
      'attr.ramGb[between]=1,2,3',
      'attr.ramGb[gte]=16%2F*comment*%2F',
      'attr.storageGb[eq]=0x41',
      `attr.cpu=${'A'.repeat(5000)}`,
      `attr.${'x'.repeat(5000)}=1`,
      'attr.ramGb[gte]=1&attr.ramGb[gte]=2',
      "sort=price;DROP%20TABLE%20products",
      'cursor=%27%20OR%201%3D1',
      'limit=1%20OR%201=1',
    ];
    for (const qs of hostile) {
      const res = await get(`/products?category=${LAPTOP}&${qs}`);
      expect({ qs: qs.slice(0, 60), status: res.status }).toEqual({ qs: qs.slice(0, 60), status: 400 });
      expect((await json(res)).error.code).toBe('bad_request');
    }
    for (const name of ["cpu'--", '$.cpu', 'a..b']) {
      expect((await send('POST', `/admin/categories/${LAPTOP}/attributes/${encodeURIComponent(name)}/promote`)).status).toBe(400);
    }
    expect(await fingerprint()).toEqual(before);
  });
});

describe('GET /categories/:code/facets', () => {
  it('when asked, then counts per value of the indexed enum attributes, within the filters', async () => {
    const code = `tattr-facet-${tag}`;
    const id = Number((await db.primary.ds.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?)', [code, code, JSON.stringify(def('food'))])).insertId);
    cat[code] = id;
    await promote(code, 'storage');
    await promote(code, 'allergens');
    await promote(code, 'weightG');
    for (const [storage, weightG, allergens] of [['room', 100, ['milk']], ['room', 900, []], ['frozen', 900, ['milk', 'egg']]] as const) {
      await create(code, { expiryDate: '2035-01-01', storage, weightG, allergens });
    }
    const all = await json(await get(`/categories/${code}/facets`));
    expect(all.total).toBe(3);
    expect(all.facets.storage).toEqual({ room: 2, chilled: 0, frozen: 1 });
    expect(all.facets.allergens).toMatchObject({ milk: 2, egg: 1, peanut: 0 });
    const heavy = await json(await get(`/categories/${code}/facets?attr.weightG[gte]=500`));
    expect(heavy).toMatchObject({ total: 2, facets: { storage: { room: 1, frozen: 1 }, allergens: { milk: 1, egg: 1 } } });
    expect((await get(`/categories/${code}/facets?attr.nope=1`)).status).toBe(400);
    expect((await get('/categories/no-such-category/facets')).status).toBe(404);
  });
});

describe('POST /admin/categories/:code/attributes/:name/promote', () => {
  /** A fresh copy of the laptop schema plus a `tags` array (not filterable yet); the category is this run's. */
  const freshCategory = async (prefix: string) => {
    const code = `${prefix}-${tag}`;
    const schema = { ...def('laptop'), properties: { ...def('laptop').properties, tags: def('food').properties.allergens } };
    cat[code] = Number((await db.primary.ds.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?)', [code, code, JSON.stringify(schema)])).insertId);
    return { code, id: cat[code] };
  };

  it('when an admin promotes an attribute, then the answer carries a consistency token past the promotion, and a replica at that token serves the ready index', async () => {
    const { code, id } = await freshCategory('tattr-ryw');
    const dialect = db.primary.dialect;
    const before = await dialect.gtidPosition(db.primary.ds);
    const res = await send('POST', `/admin/categories/${code}/attributes/ramGb/promote`);
    expect(res.status).toBe(201);
    const token = res.headers.get('x-consistency-token') ?? '';
    // The promotion ran on the DDL account's own pool, outside ReplicaRouter: its writes must still be the token.
    expect(dialect.gtidCovers(token, before)).toBe(true);
    expect(dialect.gtidCovers(before, token)).toBe(false);
    for (const replica of db.replicas) {
      const qr = replica.ds.createQueryRunner();
      try {
        await qr.connect();
        expect({ replica: replica.name, applied: await replica.dialect.waitForGtid(qr, token, 10000) }).toEqual({ replica: replica.name, applied: true });
        expect([...(await api.app.get(AttributesService).readyIndexes(id, qr.manager))]).toEqual(['ramGb']);
      } finally {
        await qr.release();
      }
    }
  });

  it('when a replica has not applied a finished promotion yet, then a filter read there is answered from the primary (not 400); an index not ready on the primary still answers 400', async () => {
    const { code, id } = await freshCategory('tattr-lag');
    const p = await create(code, { cpu: 'M3', ramGb: 8, storageGb: 256, tags: ['milk'] });
    await create(code, { cpu: 'M4', ramGb: 8, storageGb: 256, tags: ['egg'] });
    const replica = db.replicas[0];
    const stale = replica.ds.createQueryRunner();
    try {
      await stale.connect();
      // A replica that lags the promotion, for real and without touching replication: a consistent snapshot
      // taken on the replica before the promotion (tags is an array: values rows, no DDL, no metadata lock).
      expect(await replica.dialect.waitForGtid(stale, await db.primary.dialect.gtidPosition(db.primary.ds), 10000)).toBe(true);
      await stale.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const attributes = api.app.get(AttributesService);
      expect([...(await attributes.readyIndexes(id, stale.manager))]).toEqual([]);
      expect((await promote(code, 'tags')).state).toBe('ready');
      expect([...(await attributes.readyIndexes(id, stale.manager))]).toEqual([]); // still the old view
      const filters = api.app.get(FiltersService);
      const page = await filters.searchOn({ category: code, 'attr.tags[contains]': 'milk' }, stale.manager, replica);
      expect(page.items.map((x) => x.id)).toEqual([p.id]);
      // cpu is x-filterable in the schema but was never promoted: not ready on the primary either.
      await expect(filters.searchOn({ category: code, 'attr.cpu': 'M3' }, stale.manager, replica)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/index is not ready yet/) });
    } finally {
      await stale.query('ROLLBACK').catch(() => undefined);
      await stale.release();
    }
  });

  it('when an attribute is promoted while products are written and read, then no write is lost from the new index', async () => {
    // screenInch (a number, not filterable yet) and allergens on a fresh category (array: the child table path).
    const code = `tattr-online-${tag}`;
    const id = Number((await db.primary.ds.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?)', [code, code, JSON.stringify({ ...def('laptop'), properties: { ...def('laptop').properties, tags: def('food').properties.allergens } })])).insertId);
    cat[code] = id;
    await promote(code, 'cpu');
    const attrs = (i: number) => ({ cpu: i % 2 ? 'M3' : 'M4', ramGb: 8, storageGb: 256, screenInch: [13.3, 14, 15.6][i % 3], tags: i % 4 ? ['milk'] : ['egg', 'soy'] });
    const written: string[] = [];
    let stop = false;
    let errors = 0;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const p = await create(code, attrs(i + w)).catch(() => (errors++, null));
        if (p) written.push(p.id);
        if (p && i % 3 === 0 && (await send('PATCH', `/products/${p.id}`, { attributes: attrs(i + w + 1) })).status !== 200) errors++;
      }
    };
    const reader = async () => {
      while (!stop) if ((await get(`/products?category=${code}&attr.cpu=M3&limit=5`)).status !== 200) errors++;
    };
    const load = [writer(0), writer(1), reader()];
    await new Promise((r) => setTimeout(r, 300));
    const reports = [await promote(code, 'screenInch'), await promote(code, 'tags')];
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(load);
    expect(errors).toBe(0);
    expect(reports.map((r) => r.state)).toEqual(['ready', 'ready']);
    // Every product written before, during and after the promotion is found through the new indexes.
    const truth: { id: string; attributes: string }[] = await db.primary.ds.query('SELECT id, attributes FROM products WHERE category_id = ?', [id]);
    expect(truth.length).toBeGreaterThanOrEqual(written.length);
    for (const inch of ['13.3', '14', '15.6']) {
      const expected = truth.filter((r) => String(doc(r.attributes).screenInch) === inch).length;
      // The promotion's DDL reaches replicas through replication: wait until the read sees the ready index.
      const total = await waitFor(async () => { const r = await json(await get(`/categories/${code}/facets?attr.screenInch=${inch}`)); return typeof r.total === 'number' ? { n: r.total } : false; }, 30000);
      expect({ inch, total: total.n }).toEqual({ inch, total: expected });
    }
    const values: { product_id: string; value: string }[] = await db.primary.ds.query("SELECT product_id, value FROM product_attribute_values WHERE category_id = ? AND attribute = 'tags' ORDER BY product_id, value", [id]);
    const expectedValues = truth.flatMap((r) => [...doc(r.attributes).tags].sort().map((v: string) => ({ product_id: String(r.id), value: v })));
    expect(values).toEqual(expectedValues.sort((a, b) => (BigInt(a.product_id) === BigInt(b.product_id) ? (a.value < b.value ? -1 : 1) : BigInt(a.product_id) < BigInt(b.product_id) ? -1 : 1)));
  }, 120000);
});
