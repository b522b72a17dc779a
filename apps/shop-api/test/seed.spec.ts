/**
 * Default accounts: the seed tool (run from dist, as `npm start` runs it) refuses demo users in production
 * (before any connection, so nothing is written), and the admin's password is nobody's default.
 */
import { describe, expect, it } from '@jest/globals';
import { hash } from '@node-rs/argon2';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';
import { DbNodes } from '#libs/db';
import { testEnv, withNodes } from '#libs/testing';
import { ADMIN_EMAIL, ensureAdmin, OLD_DEFAULT_ADMIN_PASSWORD } from '../../../tools/seed.js';
import { startApi } from './support.js';

const seed = join(repoRoot(), 'dist/tools/seed.js');
const KEYS = { JWT_SECRET: '3f9c1e7a52b84d06a1e9c7f2b5d8e04a6c1f3b7d9e2a5c8f0b4d6e1a3c7f9b2d', ORDER_CURSOR_SECRET: 'a7d2f5c8e1b4a7d0c3f6e9b2a5d8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2' };
// Production refuses the native stack's printed database passwords, so the production runs get others:
// they must stop before connecting anywhere, which is what these tests assert.
const productionDb = () =>
  Object.fromEntries(
    Object.entries(testEnv())
      .filter(([k]) => k.startsWith('DB_'))
      .map(([k, v]) => [k, k.endsWith('_PASSWORD') ? 'seed-spec-not-a-default' : v.replace(/:[^:@/]+@/g, ':seed-spec-not-a-default@')]),
  );
const run = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, [seed, ...args], {
    env: { PATH: process.env.PATH ?? '', ...testEnv(), ...KEYS, ...(env.NODE_ENV === 'production' ? productionDb() : {}), ...env },
    encoding: 'utf8',
    timeout: 60000,
  });

describe('tools/seed', () => {
  it('seeding demo users with NODE_ENV=production is refused with one sentence, and no demo user is written', async () => {
    const before = await withNodes(async (db) => Number((await db.primary.ds.query("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'seed-user-%'"))[0].n));
    for (const args of [[], ['--users', '5', '--products', '0', '--orders', '0'], ['--users', '0', '--products', '0', '--orders', '10']]) {
      const r = run(args, { NODE_ENV: 'production' });
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(
        'seed failed: demo users (one shared password) and their orders are for development only: refusing with NODE_ENV=production (use --users 0 --orders 0 to create only the admin and the catalog)',
      );
    }
    const after = await withNodes(async (db) => Number((await db.primary.ds.query("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'seed-user-%'"))[0].n));
    expect(after).toBe(before);
  });

  it('a SEED_ADMIN_PASSWORD too short to sign in with is refused', () => {
    const r = run(['--users', '0', '--products', '0', '--orders', '0'], { NODE_ENV: 'production', SEED_ADMIN_PASSWORD: 'admin' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('seed failed: SEED_ADMIN_PASSWORD must have at least 8 characters (sign-in refuses shorter ones)');
  });

  it('the admin password is generated when none is given: shown once, written 0600, it signs in, and the old default does not', async () => {
    const api = await startApi();
    const dir = await mkdtemp(join(tmpdir(), 'seed-admin-'));
    const signIn = async (password: string) =>
      (await fetch(`${api.url}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN_EMAIL, password }) })).status;
    try {
      const ds = api.app.get(DbNodes).primary.ds;
      await ds.query('DELETE FROM users WHERE email = ?', [ADMIN_EMAIL]);
      const first = await ensureAdmin(ds, undefined, join(dir, 'admin-password'));
      expect(first.created).toBe(true);
      expect(first.generated).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect((await stat(join(dir, 'admin-password'))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(dir, 'admin-password'), 'utf8')).toBe(first.generated);
      expect(await signIn(first.generated!)).toBe(200);
      expect(await signIn('mallscale-admin')).toBe(401);
      const [before] = await ds.query('SELECT password_hash FROM users WHERE email = ?', [ADMIN_EMAIL]);
      // A second run (npm start again) neither changes the password nor shows or writes one.
      expect(await ensureAdmin(ds, undefined, join(dir, 'again'))).toEqual({ created: false });
      expect(existsSync(join(dir, 'again'))).toBe(false);
      const [after] = await ds.query('SELECT password_hash FROM users WHERE email = ?', [ADMIN_EMAIL]);
      expect(after.password_hash).toBe(before.password_hash);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await api.close();
    }
  });

  it('an admin left with the old printed default password by an earlier version gets a generated one, and its tokens end', async () => {
    const api = await startApi();
    const dir = await mkdtemp(join(tmpdir(), 'seed-admin-'));
    const signIn = async (password: string) =>
      fetch(`${api.url}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN_EMAIL, password }) });
    try {
      const ds = api.app.get(DbNodes).primary.ds;
      await ds.query('DELETE FROM users WHERE email = ?', [ADMIN_EMAIL]);
      await ds.query("INSERT INTO users (email, password_hash, role) VALUES (?, ?, 'admin')", [ADMIN_EMAIL, await hash(OLD_DEFAULT_ADMIN_PASSWORD)]);
      const old = await signIn(OLD_DEFAULT_ADMIN_PASSWORD);
      expect(old.status).toBe(200);
      const { accessToken } = (await old.json()) as { accessToken: string };
      const r = await ensureAdmin(ds, undefined, join(dir, 'admin-password'));
      expect(r).toMatchObject({ created: false, replacedOldDefault: true, generated: expect.stringMatching(/^[A-Za-z0-9_-]{24}$/) });
      expect(await readFile(join(dir, 'admin-password'), 'utf8')).toBe(r.generated);
      expect((await signIn(OLD_DEFAULT_ADMIN_PASSWORD)).status).toBe(401);
      expect((await signIn(r.generated!)).status).toBe(200);
      expect((await fetch(`${api.url}/admin/shards`, { headers: { authorization: `Bearer ${accessToken}` } })).status).toBe(401);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await api.close();
    }
  });
});
