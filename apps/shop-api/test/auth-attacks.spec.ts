/**
 * Attacks on authentication, each sent to a real shop-api on the real stack: forged and mis-typed tokens,
 * stale roles, deleted users, event-stream tokens used elsewhere, tokens in logs, password changes and a
 * flood of password hashes. Every refusal is checked next to the same request done right (so a test
 * that always answered 401 would fail).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { JwtService } from '@nestjs/jwt';
import { createLogger, KNOWN_DEFAULT_SECRETS } from '#libs/core';
import { DbNodes } from '#libs/db';
import { bearer, createAdmin, json, signUp, startApi as startWith, testEnv, type TestApi, readSse } from '#libs/testing';
import { createApp } from '../src/app.js';
import { PasswordHasher } from '../src/auth/password-hasher.js';
import { startApi } from './support.js';
import { uniqueQueue, uploadWhole } from './shorts-support.js';

const SERVER_SECRET = testEnv().JWT_SECRET;
const GOOD = { algorithm: 'HS256' as const, issuer: 'mallscale', audience: 'mallscale-shop-api', expiresIn: 600 };
const QUEUE = uniqueQueue('auth');
const ROLE_TTL_MS = 1000;

let api: TestApi;
/** Same database, a short role cache: what a demotion or a deletion looks like after the TTL. */
let shortCache: TestApi;

beforeAll(async () => {
  api = await startApi({ SHORTS_QUEUE: QUEUE, SHORTS_SWEEP_INTERVAL_MS: '0' });
  shortCache = await startApi({ SHORTS_QUEUE: QUEUE, SHORTS_SWEEP_INTERVAL_MS: '0', AUTH_ROLE_CACHE_MS: String(ROLE_TTL_MS) });
}, 60000);

afterAll(async () => {
  await api?.close();
  await shortCache?.close();
});

const forge = (secret: string, payload: object, options: object = GOOD) => new JwtService({ secret }).signAsync({ ...payload }, options);
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** Status and parsed body: an unread body keeps its socket (and jest) waiting after the servers close. */
const settle = async (res: Promise<Response>): Promise<{ status: number; body: any }> => {
  const r = await res;
  return { status: r.status, body: await json(r) };
};
const get = (base: string, path: string, token: string) => settle(fetch(`${base}${path}`, { headers: bearer(token) }));
const db = () => api.app.get(DbNodes).primary.ds;

describe('forged tokens', () => {
  it('a token signed with the old default development secret is refused', async () => {
    const admin = await createAdmin(api);
    const claims = { sub: admin.id, typ: 'access', ver: 0, role: 'admin' };
    // The same claims under the server's key open the route: only the key differs below.
    expect((await get(api.url, '/admin/nodes', await forge(SERVER_SECRET, claims))).status).toBe(200);
    for (const old of [...KNOWN_DEFAULT_SECRETS.filter((s) => s !== SERVER_SECRET), 'changeme'.repeat(4), 'secret']) {
      const res = await get(api.url, '/admin/nodes', await forge(old, claims));
      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ status: 401, code: 'unauthorized' });
    }
  });

  it('a token with alg none / HS384 / wrong issuer / wrong audience is refused', async () => {
    const user = await signUp(api);
    const claims = { sub: user.id, typ: 'access', ver: 0 };
    expect((await get(api.url, '/me', await forge(SERVER_SECRET, claims))).status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, iss: 'mallscale', aud: 'mallscale-shop-api', iat: now, exp: now + 600 })}.`;
    const attacks = {
      none,
      hs384: await forge(SERVER_SECRET, claims, { ...GOOD, algorithm: 'HS384' }),
      hs512: await forge(SERVER_SECRET, claims, { ...GOOD, algorithm: 'HS512' }),
      wrongIssuer: await forge(SERVER_SECRET, claims, { ...GOOD, issuer: 'someone-else' }),
      wrongAudience: await forge(SERVER_SECRET, claims, { ...GOOD, audience: 'another-service' }),
      noIssuerNoAudience: await forge(SERVER_SECRET, claims, { algorithm: 'HS256', expiresIn: 600 }),
      noType: await forge(SERVER_SECRET, { sub: user.id, ver: 0 }),
      expired: await forge(SERVER_SECRET, { ...claims, exp: now - 10 }, { algorithm: 'HS256', issuer: 'mallscale', audience: 'mallscale-shop-api' }),
    };
    for (const [name, token] of Object.entries(attacks)) {
      const res = await get(api.url, '/me', token);
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
    }
  });
});

describe('roles come from the database', () => {
  it('a token claiming role admin for a user whose row says user gets 403 on an admin route', async () => {
    const user = await signUp(api);
    const token = await forge(SERVER_SECRET, { sub: user.id, typ: 'access', ver: 0, role: 'admin' });
    expect((await get(api.url, '/me', token)).status).toBe(200); // the token itself is valid
    const res = await get(api.url, '/admin/nodes', token);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
  });

  it('a demoted admin loses admin routes within the role cache TTL', async () => {
    const admin = await createAdmin(shortCache);
    expect((await get(shortCache.url, '/admin/nodes', admin.token)).status).toBe(200);
    await db().query("UPDATE users SET role = 'user' WHERE id = ?", [admin.id]);
    await sleep(ROLE_TTL_MS + 200); // past the TTL: the cached 'admin' is gone
    expect((await get(shortCache.url, '/admin/nodes', admin.token)).status).toBe(403);
    expect((await get(shortCache.url, '/me', admin.token)).status).toBe(200);
    // With the cache off, the very next request sees the row.
    const noCache = await startApi({ AUTH_ROLE_CACHE_MS: '0' });
    try {
      const other = await createAdmin(noCache);
      expect((await get(noCache.url, '/admin/nodes', other.token)).status).toBe(200);
      await db().query("UPDATE users SET role = 'user' WHERE id = ?", [other.id]);
      expect((await get(noCache.url, '/admin/nodes', other.token)).status).toBe(403);
    } finally {
      await noCache.close();
    }
  });

  it("a deleted user's token is refused", async () => {
    const user = await signUp(shortCache);
    expect((await get(shortCache.url, '/me', user.token)).status).toBe(200);
    await db().query('DELETE FROM users WHERE id = ?', [user.id]);
    await sleep(ROLE_TTL_MS + 200);
    const res = await get(shortCache.url, '/me', user.token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });
});

describe('event-stream (sse) tokens', () => {
  const eventsToken = async (jobId: string, token: string) => {
    const res = await fetch(`${api.url}/shorts/jobs/${jobId}/events-token`, { method: 'POST', headers: bearer(token) });
    expect(res.status).toBe(201);
    return (await json(res)).token as string;
  };
  const opens = async (url: string) => (await readSse(url, {}, (ev) => ev.length >= 1, 20000)).status;

  it('an SSE token cannot call an access route (bearer header)', async () => {
    const user = await signUp(api);
    const job = await uploadWhole(api.url, user.token, Buffer.from('sse scope'), 'a.txt');
    const sse = await eventsToken(job, user.token);
    expect(await opens(`${api.url}/shorts/jobs/${job}/events?token=${sse}`)).toBe(200);
    for (const path of ['/me', `/shorts/jobs/${job}`, '/me/shorts/jobs', `/shorts/jobs/${job}/events-token`]) {
      const res = await fetch(`${api.url}${path}`, { method: path.endsWith('events-token') ? 'POST' : 'GET', headers: bearer(sse) });
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
    }
    expect((await fetch(`${api.url}/shorts/uploads/${job}`, { method: 'HEAD', headers: { ...bearer(sse), 'tus-resumable': '1.0.0' } })).status).toBe(401);
    expect((await fetch(`${api.url}/shorts/jobs/${job}/events`, { headers: bearer(sse) })).status).toBe(401);
  });

  it("an SSE token for job A cannot open job B's stream", async () => {
    const user = await signUp(api);
    const a = await uploadWhole(api.url, user.token, Buffer.from('job a'), 'a.txt');
    const b = await uploadWhole(api.url, user.token, Buffer.from('job b'), 'b.txt');
    const tokenA = await eventsToken(a, user.token);
    expect(await opens(`${api.url}/shorts/jobs/${a}/events?token=${tokenA}`)).toBe(200);
    const res = await fetch(`${api.url}/shorts/jobs/${b}/events?token=${tokenA}`);
    expect(res.status).toBe(401);
    expect((await json(res)).error.code).toBe('unauthorized');
    // The old route that minted one token for every stream is gone.
    expect((await fetch(`${api.url}/shorts/events-token`, { method: 'POST', headers: bearer(user.token) })).status).toBe(404);
  });

  it('an access token in ?token= is refused', async () => {
    const user = await signUp(api);
    const job = await uploadWhole(api.url, user.token, Buffer.from('access in url'), 'a.txt');
    const res = await fetch(`${api.url}/shorts/jobs/${job}/events?token=${user.token}`);
    expect(res.status).toBe(401);
    expect((await json(res)).error.code).toBe('unauthorized');
    expect(await opens(`${api.url}/shorts/jobs/${job}/events?token=${await eventsToken(job, user.token)}`)).toBe(200);
  });

  it('a ?token= value never appears in a log line', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger('trace', 'shop-api', sink);
    const logged = await startWith((c) => createApp(c, { logger }), { SHORTS_QUEUE: QUEUE, SHORTS_SWEEP_INTERVAL_MS: '0', LOG_LEVEL: 'trace' });
    try {
      const user = await signUp(logged);
      const job = await uploadWhole(logged.url, user.token, Buffer.from('logged'), 'a.txt');
      const res = await fetch(`${logged.url}/shorts/jobs/${job}/events-token`, { method: 'POST', headers: bearer(user.token) });
      const sse = (await json(res)).token as string;
      const secrets = [sse, user.token, 'not-a-real-token-but-secret-4711'];
      expect((await readSse(`${logged.url}/shorts/jobs/${job}/events?lastEventId=0-0&token=${sse}`, {}, (ev) => ev.length >= 1, 20000)).status).toBe(200);
      expect((await fetch(`${logged.url}/shorts/jobs/${job}/events?token=${user.token}`)).status).toBe(401);
      expect((await fetch(`${logged.url}/no-such-route?access_token=${secrets[2]}&x=1`)).status).toBe(404);
      expect((await fetch(`${logged.url}/shorts/jobs/${job}/events?TOKEN=${secrets[2]}`)).status).toBe(401);
      await sleep(50); // let the response-completed lines reach the sink
      const urlLines = lines.filter((l) => /token=\[redacted\]/i.test(l));
      expect(urlLines.length).toBeGreaterThanOrEqual(4); // the URLs were logged ...
      for (const secret of secrets) expect(lines.filter((l) => l.includes(secret))).toEqual([]); // ... without their tokens
    } finally {
      await logged.close();
    }
  });
});

describe('POST /me/password', () => {
  const change = (token: string, body: object) => settle(fetch(`${api.url}/me/password`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  const signIn = (email: string, password: string) => fetch(`${api.url}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });

  it('a password change invalidates tokens issued before it', async () => {
    const user = await signUp(api);
    const job = await uploadWhole(api.url, user.token, Buffer.from('before'), 'a.txt');
    const sseBefore = (await json(await fetch(`${api.url}/shorts/jobs/${job}/events-token`, { method: 'POST', headers: bearer(user.token) }))).token as string;
    const wrong = await change(user.token, { currentPassword: 'password-999', newPassword: 'a-new-password-456' });
    expect(wrong.status).toBe(403);
    expect((await get(api.url, '/me', user.token)).status).toBe(200); // a failed attempt changes nothing
    expect((await change(user.token, { currentPassword: 'password-123', newPassword: 'short' })).status).toBe(400);

    expect((await change(user.token, { currentPassword: 'password-123', newPassword: 'a-new-password-456' })).status).toBe(204);
    expect((await get(api.url, '/me', user.token)).status).toBe(401);
    expect((await settle(fetch(`${api.url}/shorts/jobs/${job}/events?token=${sseBefore}`))).status).toBe(401);
    expect((await settle(signIn(user.email, 'password-123'))).status).toBe(401);
    const fresh = await signIn(user.email, 'a-new-password-456');
    expect(fresh.status).toBe(200);
    expect((await get(api.url, '/me', (await json(fresh)).accessToken)).status).toBe(200);
  });
});

describe('password hashing queue', () => {
  it('the hashing queue answers 503 + Retry-After when full (sign-in and sign-up), and queues nothing more', async () => {
    const small = await startApi({ AUTH_HASH_CONCURRENCY: '1', AUTH_HASH_QUEUE_MAX: '1' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    try {
      const user = await signUp(small);
      const hasher = small.app.get(PasswordHasher);
      const held = [hasher.run(() => gate), hasher.run(() => gate)];
      expect(hasher.state).toEqual({ running: 1, waiting: 1 });
      const body = JSON.stringify({ email: user.email, password: 'password-123' });
      const headers = { 'content-type': 'application/json' };
      for (const path of ['/auth/sign-in', '/auth/sign-up']) {
        const res = await fetch(`${small.url}${path}`, { method: 'POST', headers, body: path.endsWith('up') ? JSON.stringify({ email: `x${user.email}`, password: 'password-123' }) : body });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect((await json(res)).error).toMatchObject({ status: 503, code: 'busy', requestId: expect.any(String) });
      }
      expect(hasher.state).toEqual({ running: 1, waiting: 1 }); // the refused requests queued nothing
      release();
      await Promise.all(held);
      const ok = await fetch(`${small.url}/auth/sign-in`, { method: 'POST', headers, body });
      expect(ok.status).toBe(200);
    } finally {
      release?.();
      await small.close();
    }
  });
});
