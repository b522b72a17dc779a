/**
 * Start-up fails fast with one sentence naming what is wrong (runs the compiled entry point, as a user would).
 */
import { describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';
import { testEnv } from '#libs/testing';

const main = join(repoRoot(), 'dist/apps/shop-api/src/main.js');
const start = (env: Record<string, string>) =>
  spawnSync(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', PORT: '0', ...env }, encoding: 'utf8', timeout: 30000 });

describe('shop-api start-up', () => {
  it('when DB_PRIMARY_URL is garbage, then it exits 1 with one sentence naming the variable', () => {
    const r = start({ DB_PRIMARY_URL: 'garbage' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      "shop-api cannot start: DB_PRIMARY_URL is not a valid URL (got 'garbage'): expected mysql://user:password@host:port/database",
    ]);
  });

  it('when NODE_ENV=production and JWT_SECRET is missing, then it exits 1 with one sentence', () => {
    const r = start({ NODE_ENV: 'production' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('shop-api cannot start: JWT_SECRET is required when NODE_ENV=production: set it to a random string of at least 32 characters (openssl rand -hex 32)');
  });

  it('when NODE_ENV=production and JWT_SECRET is the old compose default, then it exits 1 before serving anything', () => {
    const r = start({ NODE_ENV: 'production', JWT_SECRET: 'mallscale-compose-dev-secret-change-me-0123456789', ORDER_CURSOR_SECRET: 'a7d2f5c8e1b4a7d0c3f6e9b2a5d8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toMatch(/^shop-api cannot start: JWT_SECRET is a known default or placeholder, refused when NODE_ENV=production/);
  });

  it('when development listens on a non-loopback HOST without secrets, then it exits 1 with one sentence', () => {
    const r = start({ NODE_ENV: 'development', HOST: '0.0.0.0' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('shop-api cannot start: JWT_SECRET is required when HOST=0.0.0.0 is not a loopback address: set it to a random string of at least 32 characters (openssl rand -hex 32)');
  });

  it('when the primary does not answer, then it exits 1 naming the node, without a stack trace', () => {
    const r = start({ DB_PRIMARY_URL: 'mysql://mallscale:mallscale@127.0.0.1:1/mallscale_test' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^shop-api cannot start: cannot connect to primary at 127\.0\.0\.1:1\/mallscale_test: .*ECONNREFUSED/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('when HOST is not set, then it listens on 127.0.0.1 only: the machine\'s network address refuses the connection', async () => {
    const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', ...testEnv(), PORT: '0', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`shop-api exited ${code}: ${out}`)));
      });
      const reach = (host: string) =>
        new Promise<string>((resolve) => {
          const s = connect({ host, port }, () => (s.destroy(), resolve('connected')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
      expect(await reach('127.0.0.1')).toBe('connected');
      const external = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
      expect(external).toBeDefined();
      expect(await reach(external!)).toBe('ECONNREFUSED');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
