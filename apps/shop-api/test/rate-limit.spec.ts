/**
 * Abuse limits on the real stack: counters in redis-queue shared by API instances. Every test starts its
 * own instances with small limits and its own key prefix (RATE_LIMIT_PREFIX), so parallel suites, which
 * sign in from 127.0.0.1 too, never share a counter with it.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { DbNodes } from '#libs/db';
import { bearer, json, signUp, uniqueEmail, waitFor, type TestApi } from '#libs/testing';
import { startApi } from './support.js';
import { tusCreate, uploadWhole } from './shorts-support.js';

const started: TestApi[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});

async function api(overrides: Record<string, string>): Promise<TestApi> {
  const a = await startApi({ SHORTS_QUEUE: `rl-${randomUUID().slice(0, 8)}`, ...overrides });
  started.push(a);
  return a;
}

const prefix = () => `rl-test-${randomUUID().slice(0, 8)}:`;

const signIn = (a: TestApi, email: string, password: string, headers: Record<string, string> = {}) =>
  fetch(`${a.url}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ email, password }) });

const signUpRaw = (a: TestApi, email: string) =>
  fetch(`${a.url}/auth/sign-up`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'password-123' }) });

/** A 429 in the project's error shape with a usable Retry-After (whole seconds, within the window). */
async function expectTooMany(res: Response, windowS: number): Promise<void> {
  expect(res.status).toBe(429);
  const retryAfter = res.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(windowS);
  const body = await json(res);
  expect(body).toEqual({ error: { status: 429, code: 'too_many_requests', message: expect.stringMatching(/^too many .+: try again in \d+ s$/), requestId: expect.any(String) } });
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('sign-in limits', () => {
  it('a password-guessing burst on one account is cut off with 429 + Retry-After, counted across two API instances', async () => {
    const env = { RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_SIGN_IN_ACCOUNT_MAX: '4', RATE_LIMIT_SIGN_IN_ACCOUNT_WINDOW_S: '600' };
    const [a, b] = [await api(env), await api(env)];
    const victim = await signUp(a);
    // 4 guesses, alternating instances: each instance alone has seen only 2, so only a shared counter stops the 5th.
    for (const inst of [a, b, a, b]) expect((await signIn(inst, victim.email, 'wrong-password')).status).toBe(401);
    await expectTooMany(await signIn(a, victim.email, 'wrong-password'), 600);
    await expectTooMany(await signIn(b, victim.email, 'wrong-password'), 600);
    // The right password does not get through either (the hash is never checked), nor does a case variant of the e-mail.
    await expectTooMany(await signIn(b, victim.email, 'password-123'), 600);
    await expectTooMany(await signIn(a, victim.email.toUpperCase(), 'password-123'), 600);
    // Another account from the same address is not affected: the limit is the account's.
    const other = await signUp(b);
    expect((await signIn(a, other.email, 'password-123')).status).toBe(200);
  });

  it('e-mail variants that reach the same account (case, accents, full-width, zero-width characters) share its counter', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_SIGN_IN_ACCOUNT_MAX: '5', RATE_LIMIT_SIGN_IN_ACCOUNT_WINDOW_S: '600' });
    const tag = randomUUID().slice(0, 8);
    const user = await signUp(a, `jose-${tag}@test.mallscale`);
    const variants = [`JOSE-${tag}@test.mallscale`, `josé-${tag}@test.mallscale`, `ｊｏｓｅ-${tag}@test.mallscale`, `jo\u200Bse-${tag}@test.mallscale`];
    // Each variant signs in to the victim's account (the users table compares with utf8mb4_unicode_ci)...
    for (const v of variants) expect((await signIn(a, v, 'password-123')).status).toBe(200);
    // ...so each one was counted on that account: one more attempt is allowed, then 429.
    expect((await signIn(a, user.email, 'wrong-password')).status).toBe(401);
    await expectTooMany(await signIn(a, user.email, 'password-123'), 600);
  });

  it('a sign-in flood from one IP over many accounts is cut off per IP', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_SIGN_IN_IP_MAX: '5', RATE_LIMIT_SIGN_IN_IP_WINDOW_S: '600' });
    for (let i = 0; i < 5; i++) expect((await signIn(a, uniqueEmail('flood'), 'wrong-password')).status).toBe(401);
    // Every account is new to the per-account counter: only the address limit can stop these.
    await expectTooMany(await signIn(a, uniqueEmail('flood'), 'wrong-password'), 600);
    await expectTooMany(await signIn(a, uniqueEmail('flood'), 'wrong-password'), 600);
  });

  it('X-Forwarded-For does not change the client\'s bucket when TRUST_PROXY is off', async () => {
    const env = { RATE_LIMIT_SIGN_IN_IP_MAX: '3', RATE_LIMIT_SIGN_IN_IP_WINDOW_S: '600' };
    const direct = await api({ ...env, RATE_LIMIT_PREFIX: prefix() });
    for (let i = 0; i < 3; i++) expect((await signIn(direct, uniqueEmail('xff'), 'wrong-password', { 'x-forwarded-for': `203.0.113.${i + 1}` })).status).toBe(401);
    await expectTooMany(await signIn(direct, uniqueEmail('xff'), 'wrong-password', { 'x-forwarded-for': '198.51.100.7' }), 600);
    // Contrast: when 127.0.0.1 is a trusted proxy, the header names the client and the same requests get separate buckets.
    const proxied = await api({ ...env, RATE_LIMIT_PREFIX: prefix(), TRUST_PROXY: '127.0.0.1' });
    for (let i = 0; i < 5; i++) expect((await signIn(proxied, uniqueEmail('xff'), 'wrong-password', { 'x-forwarded-for': `203.0.113.${i + 1}` })).status).toBe(401);
  });

  it('after the window, the account can sign in again', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_SIGN_IN_ACCOUNT_MAX: '2', RATE_LIMIT_SIGN_IN_ACCOUNT_WINDOW_S: '2' });
    const user = await signUp(a);
    for (let i = 0; i < 2; i++) expect((await signIn(a, user.email, 'wrong-password')).status).toBe(401);
    await expectTooMany(await signIn(a, user.email, 'password-123'), 2);
    // Attempts while blocked do not extend the window: polling with the right password ends in a 200.
    const res = await waitFor(async () => {
      const r = await signIn(a, user.email, 'password-123');
      return r.status === 200 ? r : undefined;
    }, 15000, 250);
    expect((await json(res)).accessToken).toEqual(expect.any(String));
  });
});

describe('sign-up and upload limits', () => {
  it('a sign-up flood from one IP gets 429', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_SIGN_UP_IP_MAX: '3', RATE_LIMIT_SIGN_UP_IP_WINDOW_S: '600' });
    for (let i = 0; i < 3; i++) expect((await signUpRaw(a, uniqueEmail('signup-flood'))).status).toBe(201);
    const refused = uniqueEmail('signup-flood');
    await expectTooMany(await signUpRaw(a, refused), 600);
    const [{ n }] = await a.app.get(DbNodes).primary.ds.query('SELECT COUNT(*) AS n FROM users WHERE email = ?', [refused]);
    expect(Number(n)).toBe(0);
  });

  it('an upload-creation flood by one user gets 429', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_UPLOAD_USER_MAX: '2', RATE_LIMIT_UPLOAD_USER_WINDOW_S: '600' });
    const flooder = await signUp(a);
    const first = await tusCreate(a.url, flooder.token, 10);
    expect(first.status).toBe(201);
    expect((await tusCreate(a.url, flooder.token, 10)).status).toBe(201);
    await expectTooMany(await tusCreate(a.url, flooder.token, 10), 600);
    // Only creation is limited: the user's existing upload still answers HEAD.
    const head = await fetch(new URL(first.headers.get('location')!, a.url), { method: 'HEAD', headers: { authorization: `Bearer ${flooder.token}`, 'tus-resumable': '1.0.0' } });
    expect(head.status).toBe(200);
    // Another user from the same address still has a budget: the limit is the user's.
    const other = await signUp(a);
    expect((await tusCreate(a.url, other.token, 10)).status).toBe(201);
  });

  it('a leaked SSE token or a token from before a password change cannot spend its owner\'s upload budget', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_UPLOAD_USER_MAX: '3', RATE_LIMIT_UPLOAD_USER_WINDOW_S: '600', SHORTS_MAX_ACTIVE_JOBS_PER_USER: '10' });
    const victim = await signUp(a);
    const job = await uploadWhole(a.url, victim.token, Buffer.from('one finished upload'), 'v.txt'); // 1 of 3
    const sse = (await json(await fetch(`${a.url}/shorts/jobs/${job}/events-token`, { method: 'POST', headers: bearer(victim.token) }))).token as string;
    // The SSE token travels in URLs (proxy logs): replayed as a bearer token it is refused, and counted as nobody.
    for (let i = 0; i < 3; i++) expect((await tusCreate(a.url, sse, 10)).status).toBe(401);
    expect((await tusCreate(a.url, victim.token, 10)).status).toBe(201); // 2 of 3
    // A token stolen before a password change is dead: it spends nothing of the account's budget either.
    const stale = victim.token;
    const changed = await fetch(`${a.url}/me/password`, { method: 'POST', headers: { ...bearer(stale), 'content-type': 'application/json' }, body: JSON.stringify({ currentPassword: 'password-123', newPassword: 'a-new-password-456' }) });
    expect(changed.status).toBe(204);
    for (let i = 0; i < 3; i++) expect((await tusCreate(a.url, stale, 10)).status).toBe(401);
    const fresh = (await json(await signIn(a, victim.email, 'a-new-password-456'))).accessToken as string;
    expect((await tusCreate(a.url, fresh, 10)).status).toBe(201); // 3 of 3
    await expectTooMany(await tusCreate(a.url, fresh, 10), 600);
  });

  it('an upload-creation flood from one IP over many users gets 429', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_UPLOAD_IP_MAX: '3', RATE_LIMIT_UPLOAD_IP_WINDOW_S: '600' });
    const users = [await signUp(a), await signUp(a), await signUp(a), await signUp(a)];
    for (const u of users.slice(0, 3)) expect((await tusCreate(a.url, u.token, 10)).status).toBe(201);
    await expectTooMany(await tusCreate(a.url, users[3].token, 10), 600);
  });
});

describe('limiter outage', () => {
  it('when the limiter\'s Redis is unreachable, sign-in and sign-up go on (fail open) and upload creation answers 503, never 500', async () => {
    const a = await api({ RATE_LIMIT_PREFIX: prefix(), RATE_LIMIT_REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, RATE_LIMIT_REDIS_TIMEOUT_MS: '200' });
    const user = await signUp(a);
    expect((await signIn(a, user.email, 'wrong-password')).status).toBe(401);
    expect((await signIn(a, user.email, 'password-123')).status).toBe(200);
    const upload = await tusCreate(a.url, user.token, 10);
    expect(upload.status).toBe(503);
    expect((await json(upload)).error).toMatchObject({ status: 503, code: 'unavailable', requestId: expect.any(String) });
  });
});
