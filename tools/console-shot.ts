/**
 * `npm run docs:console-shot`: renders docs/console.png, the trade-off console as a reader first sees it.
 * Starts shop-api from dist on 127.0.0.1 (a free port) with CONSOLE_EXPERIMENTS=on against the configured
 * stack (npm start's by default), signs the seeded admin in through the page in headless Chromium (Debian's
 * chromium, playwright-core), with one shorts-worker, runs the experiments that change no shared node (the
 * stampede, the partitions and attribute-filter copies, the hot user; short preset, everything they create is
 * deleted after), and writes the screenshot. An explicit command: tests never write tracked files.
 * Admin: SEED admin@mallscale.local with var/admin-password, or CONSOLE_SHOT_EMAIL / CONSOLE_SHOT_PASSWORD.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { freePort, repoRoot } from '#libs/core';

const OUT = join(repoRoot(), 'docs', 'console.png');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function main(): Promise<void> {
  const email = process.env.CONSOLE_SHOT_EMAIL || 'admin@mallscale.local';
  const password = process.env.CONSOLE_SHOT_PASSWORD || readFileSync(join(repoRoot(), 'var', 'admin-password'), 'utf8').trim();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const api = spawn(process.execPath, [join(repoRoot(), 'dist/apps/shop-api/src/main.js')], {
    cwd: repoRoot(),
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', CONSOLE_EXPERIMENTS: 'on', CONSOLE_EXPERIMENT_PRESET: 'short', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const worker = spawn(process.execPath, [join(repoRoot(), 'dist/apps/shorts-worker/src/main.js')], { cwd: repoRoot(), env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'] });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    for (let i = 0; ; i++) {
      if ((await fetch(`${base}/health/live`).catch(() => undefined))?.ok) break;
      if (i > 240) throw new Error('shop-api did not start within 60 s');
      await sleep(250);
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${base}/console`);
    await page.fill('#email', email);
    await page.fill('#password', password);
    await page.click('#sign-in');
    await page.waitForSelector('#app:not([hidden])', { timeout: 30_000 }).catch(async (e: Error) => {
      throw new Error(`sign-in as ${email} failed: ${(await page.textContent('#auth-error')) || e.message}`);
    });
    for (const name of ['stampede', 'partitions', 'attribute-filter', 'hot-user']) {
      await page.click(`#exp-${name} .run`);
      await page.waitForSelector(`#exp-${name}[data-state="done"]`, { timeout: 90_000 });
    }
    await sleep(3000);
    await page.screenshot({ path: OUT, fullPage: true });
    console.log(`written ${OUT.slice(repoRoot().length + 1)}`);
  } finally {
    await browser.close();
    api.kill('SIGTERM');
    worker.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.error(`console-shot failed: ${(e as Error).message}`);
  process.exit(1);
});
