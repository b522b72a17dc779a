/**
 * Shared by the console's browser tests: shop-api (and one shorts-worker on a queue of its own) started
 * from dist as separate processes with CONSOLE_EXPERIMENTS=on, on the real stack; Debian's chromium
 * driven by playwright-core; an admin account made directly in the catalog; one product to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash } from '@node-rs/argon2';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freePort, repoRoot } from '#libs/core';
import { testEnv, waitFor, waitForReplicas, withNodes } from '#libs/testing';

export const CHROMIUM = '/usr/bin/chromium';
export const SHOTS = join(repoRoot(), 'var/e2e');
export const hasBrowser = existsSync(CHROMIUM);
/** Every box the console must draw: the /health nodes, this API instance, the workers. */
export const TOPOLOGY = ['shop-api', 'primary', 'replica-1', 'replica-2', 'shard-0', 'shard-1', 'redis-cache', 'redis-queue', 'workers'];

export interface ConsoleRig {
  baseUrl: string;
  context: BrowserContext;
  admin: { email: string; password: string; token: string };
  /** The shop-api process (a test may stop it mid-run), and a way to start it again on the same port. */
  api: ChildProcess;
  restartApi(): Promise<void>;
  close(): Promise<void>;
}


export async function startConsoleRig(env: Record<string, string> = {}): Promise<ConsoleRig> {
  const dir = await mkdtemp(join(tmpdir(), 'console-e2e-'));
  const procs: ChildProcess[] = [];
  const queue = `console-e2e-${randomUUID().slice(0, 8)}`;
  const start = (entry: string, extra: Record<string, string>) => {
    const child = spawn(process.execPath, [join(repoRoot(), entry)], {
      cwd: repoRoot(),
      env: { ...process.env, ...testEnv(), NODE_OPTIONS: '', LOG_LEVEL: 'warn', SHORTS_QUEUE: queue, SHORTS_SWEEP_INTERVAL_MS: '0', CONSOLE_EXPERIMENTS: 'on', ...env, ...extra },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    procs.push(child);
    return child;
  };
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const startApi = () => start('dist/apps/shop-api/src/main.js', { PORT: String(port) });
  const api = startApi();
  start('dist/apps/shorts-worker/src/main.js', { SHORTS_WORK_DIR: join(dir, 'work') });
  const email = `console-admin-${randomUUID().slice(0, 8)}@example.test`;
  const password = 'password-123';
  await withNodes(async (db) => {
    await db.primary.ds.query("INSERT INTO users (email, password_hash, role) VALUES (?, ?, 'admin')", [email, await hash(password)]);
    const c = await db.primary.ds.query("INSERT INTO categories (code, name, attribute_schema) VALUES (CONCAT('console-', UUID_SHORT()), 'console e2e', '{}')");
    await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, 'console e2e product', 100, '{}')", [c.insertId]);
    await waitForReplicas(db);
  });
  const live = () => waitFor(async () => (await fetch(`${baseUrl}/health/live`).catch(() => undefined))?.ok, 60000, 250);
  await live();
  const signIn = await fetch(`${baseUrl}/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  const { accessToken } = (await signIn.json()) as { accessToken: string };
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
  });
  const rig: ConsoleRig = {
    baseUrl,
    context,
    api,
    async restartApi() {
      rig.api = startApi();
      await live();
    },
    admin: { email, password, token: accessToken },
    async close() {
      await context.close().catch(() => undefined);
      await Promise.all(
        procs.map((p) => {
          if (p.exitCode !== null || p.signalCode !== null) return undefined;
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          return exited;
        }),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** Opens /console and signs the admin in through the page's form. */
export async function openConsole(rig: ConsoleRig): Promise<Page> {
  const page = await rig.context.newPage();
  await page.goto(`${rig.baseUrl}/console`);
  await page.fill('#email', rig.admin.email);
  await page.fill('#password', rig.admin.password);
  await page.click('#sign-in');
  await page.waitForSelector('#app:not([hidden])');
  return page;
}

/** An experiment's run as the API reports it (the server's own record, not the page's). */
export async function runOf(rig: ConsoleRig, name: string): Promise<any> {
  const res = await fetch(`${rig.baseUrl}/admin/console/experiments/${name}`, { headers: { authorization: `Bearer ${rig.admin.token}` } });
  return res.json();
}

export async function metricTotal(rig: ConsoleRig, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${rig.baseUrl}/metrics`)).text();
  return Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}
