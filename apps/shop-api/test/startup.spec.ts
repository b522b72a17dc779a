/**
 * Start-up fails fast with one sentence naming what is wrong (runs the compiled entry point, as a user would).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';

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
    expect(r.stderr.trim()).toBe('shop-api cannot start: JWT_SECRET is required when NODE_ENV=production: set it to a random string of at least 32 characters');
  });

  it('when the primary does not answer, then it exits 1 naming the node, without a stack trace', () => {
    const r = start({ DB_PRIMARY_URL: 'mysql://mallscale:mallscale@127.0.0.1:1/mallscale_test' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^shop-api cannot start: cannot connect to primary at 127\.0\.0\.1:1\/mallscale_test: .*ECONNREFUSED/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
