import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createAdmin, json, signUp, uniqueEmail, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let api: TestApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('POST /auth/sign-up', () => {
  it('when the e-mail is new, then 201 with an access token, and the password is stored hashed', async () => {
    const email = uniqueEmail();
    const res = await post('/auth/sign-up', { email, password: 'password-123' });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body.accessToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const me = await json(await fetch(`${api.url}/me`, { headers: bearer(body.accessToken) }));
    expect(me).toMatchObject({ email, role: 'user' });
  });

  it('when the e-mail is taken, then 409', async () => {
    const email = uniqueEmail();
    await post('/auth/sign-up', { email, password: 'password-123' });
    const res = await post('/auth/sign-up', { email, password: 'password-456' });
    expect(res.status).toBe(409);
    expect((await json(res)).error).toMatchObject({ status: 409, code: 'conflict' });
  });

  it('when the input is bad, then 400 naming each field, never 500', async () => {
    const res = await post('/auth/sign-up', { email: 'nope', password: 'short', extra: 1 });
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error.code).toBe('bad_request');
    expect(body.error.details.map((d: any) => d.field).sort()).toEqual(['email', 'extra', 'password']);
    for (const raw of ['{not json', '[]', 'null', '"x"']) {
      const r = await post('/auth/sign-up', raw);
      expect(r.status).toBe(400);
      expect((await json(r)).error.status).toBe(400);
    }
  });
});

describe('POST /auth/sign-in', () => {
  it('when the password is right, then 200 with a token; when wrong, then 401 with the same message as an unknown e-mail', async () => {
    const { email } = await signUp(api);
    const ok = await post('/auth/sign-in', { email, password: 'password-123' });
    expect(ok.status).toBe(200);
    const wrong = await post('/auth/sign-in', { email, password: 'password-999' });
    const unknown = await post('/auth/sign-in', { email: uniqueEmail(), password: 'password-999' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect((await json(wrong)).error.message).toBe((await json(unknown)).error.message);
  });
});

describe('guards', () => {
  it('when no token or a forged one is sent, then 401', async () => {
    expect((await fetch(`${api.url}/me`)).status).toBe(401);
    expect((await fetch(`${api.url}/me`, { headers: bearer('a.b.c') })).status).toBe(401);
    expect((await fetch(`${api.url}/me`, { headers: { authorization: 'Basic eA==' } })).status).toBe(401);
  });

  it('when a user calls an admin route, then 403; an admin gets 200', async () => {
    const user = await signUp(api);
    const res = await fetch(`${api.url}/admin/nodes`, { headers: bearer(user.token) });
    expect(res.status).toBe(403);
    expect((await json(res)).error.code).toBe('forbidden');
    const admin = await createAdmin(api);
    const ok = await fetch(`${api.url}/admin/nodes`, { headers: bearer(admin.token) });
    expect(ok.status).toBe(200);
    expect((await json(ok)).map((n: any) => n.name)).toEqual(['primary', 'replica-1', 'replica-2', 'shard-0', 'shard-1']);
  });

  it("when a user asks for another user's resource, then 404 (not 403); their own is 200; an admin sees both", async () => {
    const a = await signUp(api);
    const b = await signUp(api);
    expect((await fetch(`${api.url}/users/${b.id}`, { headers: bearer(a.token) })).status).toBe(404);
    expect((await fetch(`${api.url}/users/${a.id}`, { headers: bearer(a.token) })).status).toBe(200);
    expect((await fetch(`${api.url}/users/abc`, { headers: bearer(a.token) })).status).toBe(400);
    const admin = await createAdmin(api);
    expect((await fetch(`${api.url}/users/${b.id}`, { headers: bearer(admin.token) })).status).toBe(200);
  });
});
