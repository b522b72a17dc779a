/**
 * Starts shop-api in-process on port 0 against the test databases (several instances may run side by
 * side), plus small helpers to create accounts. Each test owns its data: unique e-mails, unique ids.
 */
import { randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { hash } from '@node-rs/argon2';
import type { AppConfig } from '#libs/core';
import { DbNodes } from '#libs/db';
import { testAdminConfig, testConfig } from './test-env.js';

export interface TestApi {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

export type AppFactory = (config: AppConfig) => Promise<NestFastifyApplication>;

/** The app's own factory is passed in: a library never imports an app. */
export async function startApi(createApp: AppFactory, overrides: Record<string, string> = {}): Promise<TestApi> {
  const app = await createApp(testConfig(overrides));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.getHttpServer().address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

export function uniqueEmail(tag = 'user'): string {
  return `${tag}-${randomUUID().slice(0, 12)}@test.mallscale`;
}

export async function json(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function signUp(api: TestApi, email = uniqueEmail()): Promise<{ token: string; id: string; email: string }> {
  const res = await fetch(`${api.url}/auth/sign-up`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'password-123' }),
  });
  if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${await res.text()}`);
  const { accessToken } = (await res.json()) as { accessToken: string };
  const me = (await (await fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as { id: string };
  return { token: accessToken, id: me.id, email };
}

/** An admin account, created directly in the catalog (sign-up never grants admin). */
export async function createAdmin(api: TestApi): Promise<{ token: string; id: string }> {
  const email = uniqueEmail('admin');
  const db = api.app.get(DbNodes);
  await db.primary.ds.query("INSERT INTO users (email, password_hash, role) VALUES (?, ?, 'admin')", [email, await hash('password-123')]);
  const res = await fetch(`${api.url}/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'password-123' }),
  });
  const { accessToken } = (await res.json()) as { accessToken: string };
  const me = (await (await fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as { id: string };
  return { token: accessToken, id: me.id };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Fixture access to every node through the harness's admin account (testAdminConfig). */
export async function withNodes<T>(fn: (db: DbNodes) => Promise<T>): Promise<T> {
  const db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 4 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 10000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
