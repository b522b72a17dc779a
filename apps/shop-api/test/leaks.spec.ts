/**
 * What an error, /health or a log line must not give away, and bad input that must not answer 500.
 * The app gets a logger writing into an array, so the tests read the very lines production would write.
 * A third replica URL points at a closed port: a real "down" node with a real driver error to hide.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger, RedisClients } from '#libs/core';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, signUp, startApi, testAdminConfig, testEnv, type TestApi } from '#libs/testing';
import { createApp } from '../src/app.js';
import { publicReport, type HealthReport } from '../src/health/health.service.js';

const lines: string[] = [];
const logger = createLogger('info', 'shop-api', { write: (s: string) => void lines.push(s) });
const logOf = (reqId: string) => lines.filter((l) => l.includes(reqId));

let api: TestApi;
let db: DbNodes;
/** Triggers are fixtures: the app's own account has DML only, so they go through the harness's admin account. */
let adminDb: DbNodes;
let admin: { token: string; id: string };
let categoryId: number;
const tag = randomUUID().slice(0, 8);
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  api = await startApi((config) => createApp(config, { logger }), {
    CACHE_MODE: 'off', // every read reaches ReplicaRouter, so a token wait would show in its counter
    DB_REPLICA_URLS: `${testEnv().DB_REPLICA_URLS},mysql://mallscale:closed-port-secret@127.0.0.1:1/mallscale_test`,
  });
  db = api.app.get(DbNodes);
  adminDb = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 2 });
  admin = await createAdmin(api);
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-leaks', 'Leak test goods', '{"type":"object"}')`);
  [{ id: categoryId }] = await db.primary.ds.query(`SELECT id FROM categories WHERE code = 'test-leaks'`);
});
afterAll(async () => {
  for (const c of cleanup) await c().catch(() => undefined);
  await adminDb?.close();
  await api?.close();
});

async function metricValue(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const m = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const postJson = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('leaks in error bodies', () => {
  it('a 503 from a failed order write carries no driver message; the log line with its request id does', async () => {
    const user = await signUp(api);
    const { insertId } = await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, 100, 10, '{}')", [categoryId, `leak-${tag}`]);
    const productId = String(insertId);
    const secret = `driver-says-${tag}`;
    // A real failure on every shard (test-owned trigger, only for this product).
    for (const s of adminDb.shards) {
      const trigger = `trg_leak_${tag}_${s.name.replace(/\W/g, '_')}`;
      await s.ds.query(`CREATE TRIGGER ${trigger} BEFORE INSERT ON order_items FOR EACH ROW BEGIN IF NEW.product_id = ${Number(productId)} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${secret}'; END IF; END`);
      cleanup.push(() => s.ds.query(`DROP TRIGGER IF EXISTS ${trigger}`));
    }
    const reqId = `leak-order-${tag}`;
    const res = await postJson('/orders', JSON.stringify({ items: [{ productId, quantity: 1 }] }), { ...bearer(user.token), 'idempotency-key': randomUUID(), 'x-request-id': reqId });
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text).error).toEqual({ status: 503, code: 'order_write_failed', message: expect.any(String), requestId: reqId });
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/SIGNAL|\bER_[A-Z]|sqlState|errno|45000/);
    expect(logOf(reqId).some((l) => l.includes(secret))).toBe(true);
  });

  it("a failing query's log line carries no parameter values (no password hash, no e-mail)", async () => {
    const email = `logleak-${tag}@test.mallscale`;
    const trigger = `trg_logleak_${tag}`;
    await adminDb.primary.ds.query(`CREATE TRIGGER ${trigger} BEFORE INSERT ON users FOR EACH ROW BEGIN IF NEW.email = '${email}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sign-up refused by a test trigger'; END IF; END`);
    cleanup.push(() => adminDb.primary.ds.query(`DROP TRIGGER IF EXISTS ${trigger}`));
    const reqId = `leak-query-${tag}`;
    const res = await postJson('/auth/sign-up', JSON.stringify({ email, password: 'password-leak-123' }), { 'x-request-id': reqId });
    expect(res.status).toBe(500);
    expect((await json(res)).error).toEqual({ status: 500, code: 'internal_error', message: 'internal error', requestId: reqId });
    const logged = logOf(reqId).join('\n');
    expect(logged).toContain('INSERT INTO users'); // the statement, with its placeholders, is still there to read
    expect(logged).toContain('sign-up refused by a test trigger');
    expect(logged).not.toContain('$argon2');
    expect(logged).not.toContain(email);
    expect(logged).not.toContain('password-leak-123');
  });
});

describe('GET /health', () => {
  const gtidLike = /\b\d{1,10}-\d{1,10}-\d{1,20}\b(?!-)/; // a MariaDB GTID (an ISO date has its 'T' right after)
  const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(strings) : []);

  it('public /health shows no error text, host or GTID; an admin sees details', async () => {
    for (const headers of [{}, bearer((await signUp(api)).token), { authorization: 'Bearer forged.token.here' }]) {
      const res = await fetch(`${api.url}/health`, { headers });
      expect(res.status).toBe(200);
      const body = await json(res);
      expect(body.status).toBe('degraded'); // the replica on the closed port
      const dead = body.nodes.find((n: any) => n.name === 'replica-3');
      expect(dead).toMatchObject({ status: 'down', ready: false, routing: { inRotation: false, reason: 'unreachable' } });
      for (const n of body.nodes) {
        expect(Object.keys(n).every((k) => ['name', 'role', 'status', 'ready', 'lagSeconds', 'lagOk', 'routing'].includes(k))).toBe(true);
        expect(['up', 'degraded', 'down']).toContain(n.status);
      }
      const text = JSON.stringify(body);
      for (const leak of ['127.0.0.1', 'ECONNREFUSED', 'closed-port-secret', '3307', 'connect']) expect(text).not.toContain(leak);
      expect(strings(body).filter((s) => gtidLike.test(s) && !/^\d{4}-\d{2}-\d{2}T/.test(s))).toEqual([]);
    }
    const full = await json(await fetch(`${api.url}/health`, { headers: bearer(admin.token) }));
    const primary = full.nodes.find((n: any) => n.name === 'primary');
    expect(primary).toMatchObject({ host: '127.0.0.1', port: expect.any(Number), ready: true, latencyMs: expect.any(Number) });
    expect(full.nodes.find((n: any) => n.name === 'replica-3').detail ?? full.nodes.find((n: any) => n.name === 'replica-3').routing.reason).toMatch(/ECONNREFUSED|connect/i);
    expect(full.nodes.find((n: any) => n.name === 'replica-1').routing.appliedGtid).toMatch(gtidLike);
  });

  it('a replica error in the report reaches the public view as a reason code, never as its text', () => {
    const report: HealthReport = {
      status: 'degraded',
      nodes: [
        { name: 'replica-9', role: 'replica', host: '10.1.2.3', port: 3308, ready: false, detail: "Access denied for user 'app'@'10.1.2.3'", routing: { inRotation: false, reason: 'replication stopped (IO=No SQL=Yes): error connecting to master repl@10.1.2.3:3307', lagMs: null, gtidBehind: 4, appliedGtid: '0-1-42', since: new Date(0).toISOString() } },
      ],
    };
    const shown = publicReport(report, 1000);
    expect(shown.nodes[0]).toEqual({ name: 'replica-9', role: 'replica', status: 'down', ready: false, lagSeconds: null, lagOk: null, routing: { inRotation: false, reason: 'replication_stopped', since: new Date(0).toISOString() } });
  });
});

describe('bad input that used to answer 500', () => {
  const nest = (levels: number, open: string, close: string, leaf = '1') => open.repeat(levels) + leaf + close.repeat(levels);

  it('a 2,000-level nested JSON body gets 400, not 500, on every JSON route', async () => {
    const user = await signUp(api);
    const bodies = [nest(2000, '[', ']'), nest(2000, '{"a":', '}'), `{"email":${nest(2000, '[', ']')},"password":"x"}`];
    const routes: [string, string, Record<string, string>][] = [
      ['POST', '/auth/sign-in', {}],
      ['POST', '/auth/sign-up', {}],
      ['POST', '/orders', { ...bearer(user.token), 'idempotency-key': randomUUID() }],
      ['POST', '/products', bearer(admin.token)],
      ['PATCH', '/products/1', bearer(admin.token)],
      ['POST', '/shorts/events-token', bearer(user.token)],
    ];
    for (const [method, path, headers] of routes) {
      for (const body of bodies) {
        const res = await fetch(`${api.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body });
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        expect((await json(res)).error).toMatchObject({ status: 400, code: 'json_too_deep' });
      }
    }
  });

  it('a body within the depth limit still reaches validation, and the JSON parser keeps its other defences', async () => {
    const shallow = await postJson('/auth/sign-in', `{"email":${nest(30, '[', ']')},"password":"x"}`);
    expect(shallow.status).toBe(400);
    expect((await json(shallow)).error.code).toBe('bad_request');
    const proto = await postJson('/auth/sign-in', '{"email":"a@b.c","password":"password-123","__proto__":{"admin":true}}');
    expect(proto.status).toBe(400);
    const ctor = await postJson('/auth/sign-in', '{"email":"a@b.c","password":"password-123","constructor":{"prototype":{"admin":true}}}');
    expect(ctor.status).toBe(400);
    expect((await postJson('/auth/sign-in', '')).status).toBe(400);
    expect((await postJson('/auth/sign-in', '{"email":')).status).toBe(400);
    // Brackets inside strings do not count as nesting.
    const inString = await postJson('/auth/sign-in', JSON.stringify({ email: '['.repeat(5000) + '@x.io', password: 'password-123' }));
    expect((await json(inString)).error.code).not.toBe('json_too_deep');
  });

  it('a malformed URL, an over-long path parameter and a request the HTTP parser rejects answer the JSON error shape', async () => {
    for (const [path, status] of [['/products/%E0%A4%A', 400], [`/products/${'9'.repeat(3000)}`, 414], ['/shorts/jobs/%/events', 400]] as const) {
      const res = await fetch(`${api.url}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status });
      expect((await json(res)).error).toMatchObject({ status, code: expect.any(String), message: expect.any(String), requestId: expect.any(String) });
    }
    const { port } = new URL(api.url);
    for (const [request, status] of [
      ['FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20000)}\r\n\r\n`, 431],
    ] as const) {
      const answer = await new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
        socket.on('data', (c) => chunks.push(c));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Buffer.concat(chunks).toString()));
      });
      expect(answer.split(' ')[1]).toBe(String(status));
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error).toMatchObject({ status, code: expect.any(String), requestId: expect.any(String) });
    }
  });

  it('a JSON string with a lone surrogate gets 400, not 500 (validators throw on it)', async () => {
    const res = await postJson('/auth/sign-up', '{"email":"a\\ud800@x.io","password":"password-123"}');
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('bad_request');
  });

  it('PATCH /products/:id with a null JSON body gets 400 and writes nothing', async () => {
    const { insertId } = await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, 100, 1, '{}')", [categoryId, `null-${tag}`]);
    const res = await fetch(`${api.url}/products/${insertId}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: 'null' });
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('bad_request');
    const [row] = await db.primary.ds.query('SELECT version FROM products WHERE id = ?', [insertId]);
    expect(Number(row.version)).toBe(1);
  });

  it('/web/constructor, /web/__proto__ and other Object.prototype names get 404', async () => {
    for (const name of ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', 'isPrototypeOf']) {
      const res = await fetch(`${api.url}/web/${name}`);
      expect({ name, status: res.status }).toEqual({ name, status: 404 });
      expect((await json(res)).error.code).toBe('not_found');
    }
    expect((await fetch(`${api.url}/web/app.js`)).status).toBe(200);
  });
});

describe('X-Consistency-Token', () => {
  const ahead = (pos: string) => pos.split(',').map((g) => g.replace(/-(\d+)$/, (_, n: string) => `-${BigInt(n) + 1_000_000_000n}`)).join(',');

  it('a consistency token ahead of the primary gets 400 without waiting', async () => {
    const pos = await db.primary.dialect.gtidPosition(db.primary.ds);
    const forged = ahead(pos);
    const waits = await metricValue('db_token_waits_total');
    const refused = await metricValue('db_token_checks_total', 'result="refused"');
    for (const path of ['/categories', '/products/1', '/categories/test-leaks/products']) {
      const res = await fetch(`${api.url}${path}`, { headers: { 'x-consistency-token': forged } });
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect((await json(res)).error).toMatchObject({ status: 400, code: 'invalid_consistency_token' });
    }
    expect(await metricValue('db_token_waits_total')).toBe(waits);
    expect(await metricValue('db_token_checks_total', 'result="refused"')).toBe(refused + 3);
  });

  it("a token from a write another instance just made is accepted (the primary's position is read again before refusing)", async () => {
    // A write the API did not see: its position is newer than anything the API has sampled.
    await db.primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'fresh', '{}')`, [`lk-${tag}`]);
    const token = await db.primary.dialect.gtidPosition(db.primary.ds);
    const res = await fetch(`${api.url}/categories`, { headers: { 'x-consistency-token': token } });
    expect(res.status).toBe(200);
    expect((await json(res)).map((c: { code: string }) => c.code)).toContain(`lk-${tag}`);
  });

  it('a per-user token remembered in Redis that is ahead of the primary is ignored, not waited for', async () => {
    const user = await signUp(api);
    const forged = ahead(await db.primary.dialect.gtidPosition(db.primary.ds));
    await api.app.get(RedisClients).queue.set(`consistency:user:${user.id}`, forged, 'PX', 60_000);
    const waits = await metricValue('db_token_waits_total');
    const res = await fetch(`${api.url}/categories`, { headers: bearer(user.token) });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-consistency-token')).not.toBe(forged);
    expect(await metricValue('db_token_waits_total')).toBe(waits);
  });
});
