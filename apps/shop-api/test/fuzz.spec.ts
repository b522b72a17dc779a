/**
 * Seeded fuzz: thousands of hostile requests over every route, generated from the app's own OpenAPI
 * document plus the routes it does not describe (tus, SSE, /, /web/:file, /health, /metrics).
 * Wrong types, huge and tiny values, deep nesting, long strings, injection strings, prototype keys,
 * NUL bytes and odd unicode, bad content types, Content-Length that lies, big headers, unknown methods,
 * forged tokens (wrong secret, alg none, expired, wrong type), path parameters that are not ids.
 * Asserts: no 5xx, every 4xx body is the JSON error shape, no stack trace anywhere, the server is live
 * afterwards and the rows the fuzz could touch (its own user, admin, product, order, job) are unchanged.
 *
 * Replay a run: FUZZ_SEED=<seed printed below> npm test -- apps/shop-api/test/fuzz.spec.ts
 * Writes cannot happen by construction, not by luck: every object body carries a key no DTO declares
 * (rejected before any service runs; a bare `null` body is refused by the JSON parser), tus creations
 * carry an invalid Upload-Length, the admin token never goes with a write that has no body DTO (DELETE,
 * promote), and tokens signed with the real secret name the fuzz user with role "user".
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, signUp, testEnv, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { mulberry32 } from '../../../tools/sample-data.js';

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.FUZZ_COUNT ?? 5000);
const CONCURRENCY = 6;

/** The seeded generator of tools/sample-data (mulberry32): a run is replayable from its seed. */
function prng(seed: number) {
  const next = mulberry32(seed);
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

// ------------------------------------------------------------------ hostile values

const STRINGS = [
  '', ' ', 'a', 'x'.repeat(5000), "' OR 1=1 --", "1'; DROP TABLE users; --", '" OR ""="', '\\', '%', '_', '%%', "\\'",
  '$.a[*]', '$..*', '$[0]', '$.__proto__', 'JSON_EXTRACT(attributes, "$")', '{"$gt":""}', '{"$where":"1"}',
  '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf',
  '\u0000', 'a\u0000b', '%00', '\uD800', '\uDFFF', '\uFEFF', '\u202E', '🙂'.repeat(50), 'ＡＢＣ１２３', '١٢٣', 'İıſ', 'e\u0301',
  '../../../etc/passwd', '..%2F..%2F', '/dev/zero', 'file:///etc/passwd', 'http://169.254.169.254/', '<script>alert(1)</script>',
  '${7*7}', '{{7*7}}', 'NaN', 'Infinity', '-0', '0x10', '1e309', '9'.repeat(40), '-1', '0', '1.5', ' 1', '1 ', 'true', 'null', '[]', '{}',
  'user@test.mallscale', 'a@b', '@', 'a'.repeat(300) + '@x.io', 'admin@mallscale.local',
];
const NUMBERS = [0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53, -(2 ** 53), 2 ** 63, 1e308, -1e308, Number.MIN_VALUE, 4294967296, 9.999999999999999e22];
/** JSON literals JSON.stringify cannot write: spliced into the body text. */
const RAW_LITERALS = ['1e400', '-1e400', '123456789012345678901234567890', '-0', '0.0000000000000000000001', '1E+2', '9007199254740993'];
/** What an HTTP client will put in a header (visible ASCII); other bytes go through raw requests. */
const HEADER_SAFE = STRINGS.filter((s) => /^[\x20-\x7e]{0,300}$/.test(s));
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'toString', 'hasOwnProperty'];

function value(r: Rng, depth = 0): unknown {
  const k = r.int(12);
  if (k < 4) return r.pick(STRINGS);
  if (k < 6) return r.pick(NUMBERS);
  if (k === 6) return r.pick([null, true, false]);
  if (k === 7 && depth < 3) return Array.from({ length: r.pick([0, 1, 3, 20]) }, () => value(r, depth + 1));
  if (k === 8 && depth < 3) return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick([...STRINGS.slice(0, 20), ...PROTO_KEYS]), value(r, depth + 1)]));
  if (k === 9) return nested(r, r.pick([5, 31, 33, 200, 3000]));
  if (k === 10) return r.pick(['x', '🙂', '\u0000', '[']).repeat(r.pick([256, 4096, 9000]));
  return `RAW${r.int(RAW_LITERALS.length)}`;
}

function nested(r: Rng, levels: number): unknown {
  let v: unknown = r.pick([1, 'x', null]);
  const asArray = r.chance(0.5);
  for (let i = 0; i < levels; i++) v = asArray ? [v] : { a: v };
  return v;
}

/** A plausible value for a declared property, so some requests get past the type checks into the service. */
function plausible(r: Rng, prop: any, ids: Fixtures): unknown {
  const type = prop?.type;
  if (type === 'integer' || type === 'number') return r.pick([1, 2, 10, 0, -1, 99, 1.5]);
  if (type === 'boolean') return r.chance(0.5);
  if (type === 'array') return r.chance(0.5) ? [] : [{ productId: r.pick([ids.productId, '1', 'abc', '-1']), quantity: r.pick([1, 0, -5, 1.5, '1', 10 ** 9]) }];
  if (type === 'object') return r.pick([{}, { color: 'red' }, { cpu: 'x'.repeat(100) }]);
  return r.pick(['fuzz', ids.productId, 'test-fuzz', `fuzz-${ids.tag}@test.mallscale`, 'password-123']);
}

function stringifyBody(r: Rng, v: unknown): string {
  let text = JSON.stringify(v) ?? 'null';
  text = text.replace(/"RAW(\d+)"/g, (_, i: string) => RAW_LITERALS[Number(i)]);
  if (r.chance(0.05)) text = text.slice(0, r.int(text.length + 1)); // truncated
  if (r.chance(0.03)) text = text.replace(/:/, '::'); // invalid JSON
  return text;
}

// ------------------------------------------------------------------ tokens

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
function jwt(header: object, payload: object, secret?: string): string {
  const head = `${b64(header)}.${b64(payload)}`;
  return `${head}.${secret === undefined ? '' : createHmac(secret.startsWith('sha512:') ? 'sha512' : 'sha256', secret.replace(/^sha512:/, '')).update(head).digest('base64url')}`;
}

// ------------------------------------------------------------------ requests

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Sent over a raw socket: exact bytes, lying Content-Length, unknown methods, non-ASCII header bytes. */
  raw?: string;
  /** A raw request that may legitimately get no answer (Content-Length longer than the body). */
  mayGoUnanswered?: boolean;
  /** Raw requests are UTF-8, except those testing header bytes outside ASCII (one byte per char). */
  rawLatin1?: boolean;
}

interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Fixtures {
  tag: string;
  userId: string;
  userToken: string;
  adminId: string;
  adminToken: string;
  sseToken: string;
  productId: string;
  orderId: string;
  jobId: string;
  secret: string;
}

interface Route {
  method: string;
  path: string;
  query: string[];
  body: Record<string, any> | null;
  /** Writes with no body DTO to refuse an extra key: never sent with a token that could perform them. */
  bodyless: boolean;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

async function send(base: URL, req: FuzzRequest, timeoutMs = 10_000): Promise<FuzzResponse | null> {
  if (req.raw !== undefined) return sendRaw(base, req, timeoutMs);
  try {
    return await sendHttp(base, req, timeoutMs, agent);
  } catch (e) {
    // A kept-alive socket the server closed after its previous answer (a 413, say) fails the next request
    // before it is read: retry that once on a fresh connection, as Node's documentation advises.
    if ((e as { reusedSocket?: boolean }).reusedSocket || (e as Error).message === 'socket hang up') return sendHttp(base, req, timeoutMs, false);
    throw e;
  }
}

function sendHttp(base: URL, req: FuzzRequest, timeoutMs: number, via: http.Agent | false): Promise<FuzzResponse | null> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: base.hostname, port: base.port, method: req.method, path: req.path, headers: req.headers, agent: via }, (res) => {
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size < 64 * 1024) chunks.push(c);
        // An event stream that opened is all we need to know; a job's stream may stay open.
        if (isStream && size > 0) r.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.on('end', done);
      res.on('close', done);
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on('error', (e) => reject(Object.assign(e, { reusedSocket: r.reusedSocket && (e as NodeJS.ErrnoException).code === 'ECONNRESET' })));
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

function sendRaw(base: URL, req: FuzzRequest, timeoutMs: number): Promise<FuzzResponse | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      if (req.mayGoUnanswered) resolve(null);
      else reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      if (!text) return req.mayGoUnanswered ? resolve(null) : reject(new Error('connection closed without an answer'));
      const [head, ...rest] = text.split('\r\n\r\n');
      const [statusLine, ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = rest.join('\r\n\r\n');
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
      else if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length'])); // one answer; the parser may add a second
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') });
    });
    socket.write(req.raw!, req.rawLatin1 ? 'latin1' : 'utf8');
    if (req.mayGoUnanswered && !req.raw!.startsWith('CONNECT')) socket.end(); // half-close: the promised bytes never come
  });
}

function dechunk(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; ) {
    const nl = s.indexOf('\r\n', i);
    const n = parseInt(s.slice(i, nl), 16);
    if (!n) break;
    out += s.slice(nl + 2, nl + 2 + n);
    i = nl + 2 + n + 2;
  }
  return out;
}

// ------------------------------------------------------------------ the generator

const BAD_IDS = ['0', '-1', '1.5', 'abc', '99999999999999999999999', '0x1f', '1e3', '%201', '%20', '%00', '%2e%2e', '..', '%2F', 'a%2Fb', '__proto__', 'constructor', '%F0%9F%99%82', '%C0%AE', encodeURIComponent("1' OR '1'='1"), 'x'.repeat(3000), '%uD800', '%'];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/offset+octet-stream', 'application/vnd.api+json', ';;;', 'application/json'.repeat(40), '*/*'];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const INVALID_UPLOAD_LENGTHS = ['-1', 'abc', '1.5', '', '1e3', '0x10', '99999999999999999999999', String(2 ** 53 + 10), '1,2'];

function fillPath(r: Rng, path: string, f: Fixtures): string {
  return path.replace(/\{(\w+)\}|:(\w+)/g, (_, a: string, b: string) => {
    const name = a ?? b;
    if (r.chance(0.3)) {
      if (name === 'id') return r.pick([f.productId, f.orderId, f.jobId, f.userId, f.adminId]);
      if (name === 'code') return r.pick(['test-fuzz', 'no-such-category']);
      if (name === 'file') return r.pick(['app.js', 'index.html', 'nope.js']);
      return 'x';
    }
    return r.pick(BAD_IDS);
  });
}

/** encodeURIComponent that also writes lone surrogates (as the invalid UTF-8 bytes ED A0 80). */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s.split(/[\uD800-\uDFFF]/).map((p) => encodeURIComponent(p)).join('%ED%A0%80');
  }
}

function queryString(r: Rng, names: string[], f: Fixtures): string {
  const keys = [...names, ...(r.chance(0.3) ? [r.pick(PROTO_KEYS), 'a[b]', 'filter[color]', 'limit', 'cursor', 'token', 'lastEventId'] : [])];
  const parts: string[] = [];
  for (const k of keys) {
    if (!r.chance(0.6)) continue;
    const v = r.chance(0.2) ? plausible(r, { type: r.pick(['integer', 'string']) }, f) : r.pick([...STRINGS, ...NUMBERS.map(String)]);
    parts.push(`${enc(k)}=${enc(String(v))}`);
    if (r.chance(0.1)) parts.push(`${enc(k)}=${enc(String(v))}`); // repeated key
  }
  if (r.chance(0.05)) parts.push('%', '%zz', '&&&', '=');
  return parts.length ? `?${parts.join('&')}` : '';
}

function forgedToken(r: Rng, f: Fixtures): string {
  const now = Math.floor(Date.now() / 1000);
  const admin = { sub: f.adminId, role: 'admin', iat: now, exp: now + 3600 };
  const mine = { sub: f.userId, role: 'user', iat: now, exp: now + 3600 };
  return r.pick([
    () => jwt({ alg: 'HS256', typ: 'JWT' }, admin, 'wrong-secret-0123456789-0123456789'),
    () => jwt({ alg: 'none', typ: 'JWT' }, admin),
    () => jwt({ alg: 'NONE' }, admin) + 'x',
    () => jwt({ alg: 'HS512' }, admin, 'sha512:wrong'),
    () => jwt({ alg: 'RS256', kid: '../../../../dev/null' }, admin, 'wrong'),
    () => jwt({ alg: 'HS256', typ: 'JWT' }, { ...mine, iat: now - 7200, exp: now - 3600 }, f.secret), // expired
    () => jwt({ alg: 'HS256', typ: 'JWT' }, { ...mine, scope: 'sse' }, f.secret), // wrong type: an sse token as a bearer
    () => jwt({ alg: 'HS256', typ: 'JWT' }, { ...mine, typ: 'refresh' }, f.secret),
    () => jwt({ alg: 'HS256', typ: 'JWT' }, { sub: "1 OR 1=1", role: 'admin', exp: now + 60 }, 'x'),
    () => jwt({ alg: 'HS256' }, { sub: { $gt: '' }, role: ['admin'] }, 'x'),
    () => 'a.b.c',
    () => '..',
    () => 'x'.repeat(8000),
    () => f.userToken.slice(0, -3) + 'AAA', // a real token, signature broken
    () => f.sseToken,
  ])();
}

function authHeader(r: Rng, f: Fixtures, route: Route | null): string | undefined {
  const write = route ? !['GET', 'HEAD'].includes(route.method) : true;
  const roll = r.int(10);
  if (roll < 2) return undefined;
  if (roll < 5) return `Bearer ${forgedToken(r, f)}`;
  if (roll < 6) return r.pick(['Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `bearer ${f.userToken}`, `Bearer  ${f.userToken} x`, 'Bearer a b', `Token ${f.userToken}`]);
  // Real tokens. The admin's on reads, and on writes whose body DTO refuses every body this fuzz sends;
  // a bodyless write (DELETE, promote) never gets a token that may perform it.
  if (route?.bodyless && write) return `Bearer ${forgedToken(r, f)}`;
  if (roll < 8) return `Bearer ${f.adminToken}`;
  return `Bearer ${f.userToken}`;
}

function jsonBody(r: Rng, route: Route | null, f: Fixtures): string {
  const shape = r.int(10);
  let v: unknown;
  if (shape < 6 && route?.body) {
    // The DTO's own properties, hostile or plausible, plus one key no DTO declares: never a valid write.
    const props = Object.entries(route.body);
    v = Object.fromEntries(props.filter(() => r.chance(0.8)).map(([k, p]) => [k, r.chance(0.4) ? plausible(r, p, f) : value(r)]));
    (v as Record<string, unknown>)[r.pick(['__fuzz', 'role', 'isAdmin', 'id', 'userId', 'extra', '\u0000', '🙂'])] = value(r);
    if (r.chance(0.1)) (v as Record<string, unknown>).items = [{ productId: f.productId, quantity: 1, extra: value(r) }];
  } else if (shape < 8) {
    v = { __fuzz: value(r), [r.pick(PROTO_KEYS)]: value(r) };
  } else {
    v = r.pick([[], 'string', 42, null, true, nested(r, r.pick([40, 2000]))]);
  }
  let text = stringifyBody(r, v);
  if (r.chance(0.05)) text = `{"__proto__":{"role":"admin"},"__fuzz":${text}}`;
  if (r.chance(0.05)) text = `{"constructor":{"prototype":{"role":"admin"}},"__fuzz":1}`;
  return text;
}

function buildRequest(r: Rng, routes: Route[], f: Fixtures): FuzzRequest {
  const kind = r.int(100);
  if (kind < 8) return rawRequest(r, routes, f);
  if (kind < 18) return tusRequest(r, f);
  if (kind < 24) return sseRequest(r, f);
  const route = r.pick(routes);
  const method = r.chance(0.1) ? r.pick(METHODS) : route.method;
  const headers: Record<string, string> = {};
  // Another method than the route's has no body DTO to refuse the body: it counts as bodyless.
  const auth = authHeader(r, f, { ...route, method, bodyless: route.bodyless || method !== route.method });
  if (auth) headers.authorization = auth;
  let body: string | undefined;
  // A GET may carry a body (rarely); a HEAD never does, Node's client cannot send one cleanly.
  if (!['GET', 'HEAD'].includes(method) || (method === 'GET' && r.chance(0.05))) {
    const ct = r.chance(0.75) ? 'application/json' : r.pick(CONTENT_TYPES);
    headers['content-type'] = ct;
    body = ct.includes('urlencoded')
      ? `__fuzz=1&${Object.keys(route.body ?? { email: 1, password: 1 }).map((k) => `${k}=${enc(String(r.pick(STRINGS)))}`).join('&')}`
      : ct.includes('octet') && r.chance(0.5)
        ? 'x'.repeat(r.int(2048))
        : jsonBody(r, route, f);
  }
  if (r.chance(0.2)) headers['x-consistency-token'] = r.pick(['0-1-1', '0-1-999999999999', '0-1-1,1-1-1', '0-99-5', "0-1-1' OR 1=1", '1-2', 'x'.repeat(3000), '00000000-0000-0000-0000-000000000000:1-5', `0-1-${'9'.repeat(19)}`]);
  if (r.chance(0.2)) headers['idempotency-key'] = r.pick(['', ' ', 'has spaces', 'x'.repeat(65), "'; DROP TABLE orders; --", '%00', '..']); // never a valid key
  if (r.chance(0.1)) headers['x-request-id'] = r.pick(['', 'x'.repeat(200), '../../', '${jndi:ldap://x}', 'a b']);
  if (r.chance(0.05)) headers['x-fuzz-big'] = 'h'.repeat(r.pick([4000, 12000]));
  if (r.chance(0.05)) headers.accept = r.pick(['text/html', '*/*;q=abc', 'application/xml', '']);
  if (r.chance(0.05)) headers['accept-encoding'] = r.pick(['gzip, deflate, br', 'identity;q=0', 'x'.repeat(500)]);
  if (r.chance(0.03)) headers['last-event-id'] = r.pick(HEADER_SAFE);
  return { method, path: fillPath(r, route.path, f) + queryString(r, route.query, f), headers, body };
}

function tusRequest(r: Rng, f: Fixtures): FuzzRequest {
  const method = r.pick(['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'GET', 'PUT']);
  const suffix = r.pick(['', `/${randomHex(r)}`, `/${f.jobId}`, `?/${randomHex(r)}`, `/${randomHex(r)}/`, `/%2F${randomHex(r)}`, `/..%2F${randomHex(r)}`, `/./${randomHex(r)}`, '/..', '/%00', `/${r.pick(BAD_IDS)}`]);
  const headers: Record<string, string> = { 'tus-resumable': r.pick(['1.0.0', '1.0.0', '0.2.2', '', 'x']) };
  const auth = r.chance(0.3) ? `Bearer ${forgedToken(r, f)}` : r.chance(0.2) ? undefined : `Bearer ${f.userToken}`;
  if (auth) headers.authorization = auth;
  // A creation never carries a valid Upload-Length: the fuzz must not leave uploads (or jobs) behind.
  if (method === 'POST') headers['upload-length'] = r.pick(INVALID_UPLOAD_LENGTHS);
  if (r.chance(0.3)) headers['upload-offset'] = r.pick(['0', '-1', 'abc', '99999999999', '1.5']);
  if (r.chance(0.3)) headers['upload-metadata'] = r.pick(['filename ' + Buffer.from('../../x').toString('base64'), 'filename', 'a b c', 'userId ' + Buffer.from(f.adminId).toString('base64'), 'x'.repeat(5000), ',,,', 'filename !!!']);
  if (r.chance(0.2)) headers['upload-defer-length'] = r.pick(['0', '2', 'abc']);
  let body: string | undefined;
  if (method === 'PATCH' || (method === 'POST' && r.chance(0.3))) {
    headers['content-type'] = r.chance(0.8) ? 'application/offset+octet-stream' : r.pick(CONTENT_TYPES);
    body = 'v'.repeat(r.int(4096));
  }
  return { method, path: `/shorts/uploads${suffix}`, headers, body };
}

function sseRequest(r: Rng, f: Fixtures): FuzzRequest {
  const id = r.chance(0.4) ? f.jobId : r.chance(0.5) ? randomHex(r) : r.pick(BAD_IDS);
  const token = r.pick([f.sseToken, f.userToken, forgedToken(r, f), '', 'x'.repeat(5000), "' OR 1=1"]);
  const q = r.chance(0.8) ? `?token=${enc(token)}` : '';
  const extra = r.chance(0.2) ? `${q ? '&' : '?'}lastEventId=${enc(String(r.pick(STRINGS.slice(0, 40))))}` : '';
  const headers: Record<string, string> = {};
  if (r.chance(0.2)) headers.authorization = `Bearer ${r.chance(0.5) ? f.userToken : forgedToken(r, f)}`;
  if (r.chance(0.2)) headers['last-event-id'] = r.pick(['0-0', '9999999999999-0', 'abc', '-1', '1-1-1', '$', '>']);
  return { method: r.chance(0.9) ? 'GET' : r.pick(['POST', 'HEAD', 'DELETE']), path: `/shorts/jobs/${id}/events${q}${extra}`, headers };
}

function rawRequest(r: Rng, routes: Route[], f: Fixtures): FuzzRequest {
  const route = r.pick(routes);
  const path = fillPath(r, route.path, f);
  const body = jsonBody(r, route, f);
  const len = Buffer.byteLength(body);
  const kind = r.int(8);
  const head = (method: string, lines: string[]) => `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`;
  switch (kind) {
    case 0: // Content-Length shorter than the body: the rest is not a request
      return { method: 'POST', path, headers: {}, raw: head('POST', ['Content-Type: application/json', `Content-Length: ${Math.max(0, len - 1 - r.int(len))}`]) + body };
    case 1: // Content-Length longer than the body, then the client stops sending
      return { method: 'POST', path, headers: {}, raw: head('POST', ['Content-Type: application/json', `Content-Length: ${len + 1 + r.int(1000)}`]) + body, mayGoUnanswered: true };
    case 2: // both Content-Length and Transfer-Encoding
      return { method: 'POST', path, headers: {}, raw: head('POST', ['Content-Type: application/json', `Content-Length: ${len}`, 'Transfer-Encoding: chunked']) + body };
    case 3: // a Content-Length that is not a number
      return { method: 'POST', path, headers: {}, raw: head('POST', ['Content-Type: application/json', `Content-Length: ${r.pick(['abc', '-1', '1.5', '1, 2', '99999999999999999999'])}`]) + body };
    case 4: { // methods the HTTP parser does not know, or that no route has
      // CONNECT goes to the server's 'connect' event; with no proxy there, Node closes the socket unanswered.
      const method = r.pick(['FOO', 'PROPFIND', 'TRACE', 'CONNECT', 'MKCOL', 'get', 'G ET', 'PURGE']);
      return { method: 'X', path, headers: {}, raw: head(method, []), mayGoUnanswered: method === 'CONNECT' };
    }
    case 5: // header bytes outside ASCII, obs-fold, a header with no name
      return {
        method: 'GET',
        path,
        headers: {},
        rawLatin1: true,
        raw: head('GET', [r.pick(['X-Consistency-Token: \u00ff\u00fe', 'Authorization: Bearer \u00e9\u00e9.\u00e9.\u00e9', 'X-Request-Id: \u00e4\u00f6\u00fc', ': nameless', 'X-Folded: a\r\n b', 'Content-Type: application/json\u0000'])]),
      };
    case 6: // headers over Node's limit
      return { method: 'GET', path, headers: {}, raw: head('GET', [`X-Huge: ${'h'.repeat(20000)}`]) };
    default: // a body in chunked encoding, possibly broken
      return { method: 'POST', path, headers: {}, raw: head('POST', ['Content-Type: application/json', 'Transfer-Encoding: chunked']) + (r.chance(0.5) ? `${len.toString(16)}\r\n${body}\r\n0\r\n\r\n` : `zz\r\n${body}\r\n`) };
  }
}

function randomHex(r: Rng): string {
  return Array.from({ length: 32 }, () => '0123456789abcdef'[r.int(16)]).join('');
}

// ------------------------------------------------------------------ checks

function problemsOf(req: FuzzRequest, res: FuzzResponse | null): string[] {
  if (!res) return req.mayGoUnanswered ? [] : ['no answer'];
  const out: string[] = [];
  if (res.status >= 500 || res.status < 100) out.push(`status ${res.status}`);
  if (res.status >= 400 && /\n\s+at .+:\d+:\d+|node_modules|\/work\/|QueryFailedError|\bER_[A-Z_]{4,}/.test(res.body)) out.push('a stack trace or driver text in the body');
  const isHead = req.method === 'HEAD' || /^HEAD /.test(req.raw ?? '');
  if (res.status >= 400 && res.status < 500 && !isHead) {
    let body: any;
    try {
      body = JSON.parse(res.body);
    } catch {
      out.push('a 4xx body that is not JSON');
    }
    const e = body?.error;
    if (body && !(e && e.status === res.status && typeof e.code === 'string' && typeof e.message === 'string' && typeof e.requestId === 'string')) {
      out.push('a 4xx body not in the error shape');
    }
  }
  return out;
}

function describeRequest(req: FuzzRequest): string {
  const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…(${s.length} chars)` : s);
  return req.raw !== undefined ? `raw ${JSON.stringify(clip(req.raw))}` : `${req.method} ${clip(req.path)} headers=${clip(JSON.stringify(req.headers))} body=${req.body === undefined ? '-' : JSON.stringify(clip(req.body))}`;
}

// ------------------------------------------------------------------ fixtures and the run

let api: TestApi;
let db: DbNodes;
let f: Fixtures;
let shardOfUser: number;

async function snapshot(): Promise<unknown> {
  const users = await db.primary.ds.query('SELECT id, email, password_hash, role FROM users WHERE id IN (?, ?) ORDER BY id', [f.userId, f.adminId]);
  // Named columns: other suites add generated columns to products while this one runs (attribute promotion).
  const products = await db.primary.ds.query('SELECT id, category_id, name, price_cents, stock, attributes, version FROM products WHERE id = ? OR name LIKE ?', [f.productId, `%fuzz-${f.tag}%`]);
  const jobs = await db.primary.ds.query('SELECT id, user_id, file_name, size_bytes, source_key, status, progress, reason, result_key, attempt FROM shorts_jobs WHERE user_id IN (?, ?) ORDER BY id', [f.userId, f.adminId]);
  const newUsers = await db.primary.ds.query('SELECT COUNT(*) AS n FROM users WHERE email LIKE ?', [`%fuzz-${f.tag}%`]);
  const shard = db.shards[shardOfUser].ds;
  const orders = await shard.query('SELECT * FROM orders WHERE user_id = ? ORDER BY id', [f.userId]);
  const items = await shard.query('SELECT i.* FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.user_id = ? ORDER BY i.order_id, i.line_no', [f.userId]);
  const keys = await shard.query('SELECT * FROM idempotency_keys WHERE user_id = ? ORDER BY idem_key', [f.userId]).catch(() => 'n/a');
  return JSON.parse(JSON.stringify({ users, products, jobs, newUsers, orders, items, keys }));
}

beforeAll(async () => {
  api = await startApi();
  db = api.app.get(DbNodes);
  const tag = randomUUID().slice(0, 8);
  const user = await signUp(api, `fuzz-${tag}@test.mallscale`);
  const admin = await createAdmin(api);
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-fuzz', 'Fuzz goods', '{"type":"object","properties":{"color":{"type":"string"}}}')`);
  const [{ id: categoryId }] = await db.primary.ds.query(`SELECT id FROM categories WHERE code = 'test-fuzz'`);
  const { insertId } = await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, 500, 5, '{\"color\":\"red\"}')", [categoryId, `fuzz-${tag}`]);
  const productId = String(insertId);
  const ordered = await fetch(`${api.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `fuzz-${tag}`, ...bearer(user.token) },
    body: JSON.stringify({ items: [{ productId, quantity: 1 }] }),
  });
  if (ordered.status !== 201) throw new Error(`fixture order: ${ordered.status} ${await ordered.text()}`);
  const order = await json(ordered);
  shardOfUser = db.shards.findIndex((s) => s.name === order.shard);
  const jobId = randomUUID().replace(/-/g, '');
  await db.primary.ds.query(
    "INSERT INTO shorts_jobs (id, user_id, file_name, size_bytes, source_key, queue, status, progress, reason) VALUES (?, ?, 'fuzz.mp4', 1, ?, ?, 'FAILED', 0, 'fixture')",
    [jobId, user.id, `fuzz/${jobId}`, `fuzz-${tag}`],
  );
  const sse = await json(await fetch(`${api.url}/shorts/events-token`, { method: 'POST', headers: bearer(user.token) }));
  f = { tag, userId: user.id, userToken: user.token, adminId: admin.id, adminToken: admin.token, sseToken: sse.token, productId, orderId: order.id, jobId, secret: testEnv().JWT_SECRET };
});

afterAll(async () => {
  agent.destroy();
  await api?.close();
});

async function routesOf(): Promise<Route[]> {
  const doc = await json(await fetch(`${api.url}/docs-json`));
  const resolve = (s: any): any => (s?.$ref ? doc.components.schemas[s.$ref.split('/').pop()] : s);
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      const schema = resolve(op.requestBody?.content?.['application/json']?.schema);
      routes.push({
        method: method.toUpperCase(),
        path,
        query: (op.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name),
        body: schema?.properties ?? null,
        bodyless: !schema,
      });
    }
  }
  // Routes the OpenAPI document does not describe.
  for (const [method, path] of [['GET', '/'], ['GET', '/web/{file}'], ['GET', '/health'], ['GET', '/health/live'], ['GET', '/metrics'], ['GET', '/shorts/jobs/{id}/events'], ['POST', '/shorts/uploads'], ['PATCH', '/shorts/uploads/{id}']] as const) {
    if (!routes.some((x) => x.method === method && x.path === path)) routes.push({ method, path, query: [], body: null, bodyless: true });
  }
  return routes;
}

describe('fuzz', () => {
  it(`${COUNT} seeded hostile requests over every route: no 5xx, every 4xx in the JSON error shape, the server live and the fixtures unchanged`, async () => {
    console.log(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED} npm test -- apps/shop-api/test/fuzz.spec.ts)`);
    const routes = await routesOf();
    expect(routes.length).toBeGreaterThan(25);
    const before = await snapshot();
    const base = new URL(api.url);
    const r = prng(SEED);
    // Requests are generated up front, in order, so a seed replays the same list whatever the timing.
    const requests = Array.from({ length: COUNT }, () => buildRequest(r, routes, f));
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const slowest: [number, number][] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const i = next++;
          const req = requests[i];
          let res: FuzzResponse | null;
          const t0 = performance.now();
          try {
            res = await send(base, req);
            slowest.push([performance.now() - t0, i]);
            if (slowest.length > 50) slowest.sort((a, b) => b[0] - a[0]).splice(10);
          } catch (e) {
            failures.push(`#${i} ${(e as Error).message}: ${describeRequest(req)}`);
            continue;
          }
          if (res) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (process.env.FUZZ_DEBUG && res && res.status >= 200 && res.status < 300 && req.method !== 'GET') console.log(`#${i} ${res.status}: ${describeRequest(req).slice(0, 300)}`);
          const problems = problemsOf(req, res);
          if (problems.length) failures.push(`#${i} ${problems.join(', ')} (got ${res?.status} ${JSON.stringify(res?.body.slice(0, 200))}): ${describeRequest(req)}`);
        }
      }),
    );
    console.log(`fuzz seed ${SEED}: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    if (process.env.FUZZ_DEBUG) {
      for (const [ms, i] of slowest.sort((a, b) => b[0] - a[0]).slice(0, 8)) console.log(`slow #${i} ${Math.round(ms)} ms: ${describeRequest(requests[i]).slice(0, 400)}`);
    }
    expect(failures.slice(0, 20)).toEqual([]);
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    expect(await snapshot()).toEqual(before);
  }, 90_000);
});
