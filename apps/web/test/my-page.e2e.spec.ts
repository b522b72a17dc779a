/**
 * My page end to end in a real browser: Debian's chromium (headless) driven by playwright-core, against
 * shop-api and one shorts-worker started from dist as separate processes (what compose runs), on the
 * real MariaDB + redis-queue. The user signs in on the page, uploads a generated video through the
 * page's tus progress bar, watches the live steps, closes the page mid-job and reopens it: the job and its
 * progress are there (from the DB and the event stream replay), and it reaches DONE live.
 * "Mid-job" is made deterministic by freezing the worker's whole process group (SIGSTOP: the worker, the
 * model process and ffmpeg) while the page is closed, and thawing it after the reopen.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freePort, repoRoot } from '#libs/core';
import { makeSyntheticVideo, testEnv, waitFor } from '#libs/testing';

const CHROMIUM = '/usr/bin/chromium';
const QUEUE = `shorts-e2e-${randomUUID().slice(0, 8)}`;
const SHOTS = join(repoRoot(), 'var/e2e');
const describeWithBrowser = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`${CHROMIUM} is missing (apt-get install -y chromium, or npm run stack -- up as root): the browser test is skipped`);

let dir: string;
let video: string;
let baseUrl: string;
let context: BrowserContext;
const procs: ChildProcess[] = [];


function start(entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(repoRoot(), entry)], {
    cwd: repoRoot(),
    env: { ...process.env, ...testEnv(), NODE_OPTIONS: '', LOG_LEVEL: 'warn', SHORTS_QUEUE: QUEUE, SHORTS_SSE_HEARTBEAT_MS: '1000', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    // Its own process group: the test freezes the worker together with its model process and ffmpeg.
    detached: true,
  });
  procs.push(child);
  return child;
}

const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => process.kill(-child.pid!, signal);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  dir = await mkdtemp(join(tmpdir(), 'my-page-e2e-'));
  await mkdir(SHOTS, { recursive: true });
  video = await makeSyntheticVideo(join(dir, 'holiday.mp4'), { seconds: 60, size: '640x360' });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  start('dist/apps/shop-api/src/main.js', { PORT: String(port), SHORTS_SWEEP_INTERVAL_MS: '0' });
  await waitFor(async () => (await fetch(`${baseUrl}/health/live`).catch(() => undefined))?.ok, 60000, 250);
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 700 },
  });
}, 180000);

afterAll(async () => {
  await context?.close();
  for (const p of procs) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((r) => p.once('exit', r));
    try {
      signalGroup(p, 'SIGCONT');
      signalGroup(p, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60000);

const stepOf = (page: Page) => page.locator('#jobs tr .step').first().textContent();
const percentOf = async (page: Page) => Number(((await page.locator('#jobs tr .pct').first().textContent()) ?? '').replace(/\D/g, ''));

describeWithBrowser('GET / (My page) in headless Chromium', () => {
  it('when a user uploads a video, closes the page mid-job and reopens it, then the progress is there and the job reaches DONE live', async () => {
    // Sign in on the page (create the account through the page's own form).
    const page = await context.newPage();
    const browserLog: string[] = [];
    page.on('console', (m) => browserLog.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => browserLog.push(`pageerror: ${e.message}`));
    await page.goto(baseUrl);
    await page.fill('#email', `e2e-${randomUUID().slice(0, 8)}@example.test`);
    await page.fill('#password', 'password-123');
    await page.click('#sign-up');
    await page.waitForSelector('#app:not([hidden])');
    expect(await page.textContent('#who')).toContain('@example.test');

    // Upload through the page: tus-js-client, progress bar driven by its onProgress.
    // (Browser-side code as strings: the test project compiles without the DOM typings.)
    await page.evaluate(`(() => {
      window.widths = [];
      const bar = document.getElementById('upload-bar');
      new MutationObserver(() => window.widths.push(bar.style.width)).observe(bar, { attributes: true, attributeFilter: ['style'] });
    })()`);
    await page.setInputFiles('#file', video);
    await page.waitForFunction(`/uploaded/.test(document.getElementById('upload-status').textContent)`, undefined, { timeout: 60000 });
    const widths = (await page.evaluate('window.widths')) as string[];
    expect(widths.at(-1)).toBe('100%');
    await page.waitForSelector('#jobs tr[data-job]');
    expect(await page.textContent('#jobs tr .name')).toBe('holiday.mp4');
    expect(await stepOf(page)).toBe('QUEUED');

    // A worker starts: the page follows the steps live over SSE.
    const worker = start('dist/apps/shorts-worker/src/main.js', { SHORTS_WORK_DIR: join(dir, 'work'), SHORTS_LOCK_MS: '300000' });
    const seen = new Set<string>();
    await waitFor(async () => {
      const step = (await stepOf(page)) ?? '';
      seen.add(step);
      return step === 'GENERATING' && (await percentOf(page)) > 5;
    }, 120000, 20).catch(async (e) => {
      await page.screenshot({ path: join(SHOTS, 'my-page-failed.png'), fullPage: true });
      throw new Error(`${(e as Error).message}; steps seen: ${[...seen].join(', ')}; browser: ${browserLog.join(' | ')}`);
    });
    signalGroup(worker, 'SIGSTOP');
    const before = await percentOf(page);
    expect([...seen]).toContain('GENERATING');
    await page.screenshot({ path: join(SHOTS, 'my-page-1-live.png'), fullPage: true });
    await page.close();

    // Reopen: the job is listed (catalog DB) with its progress (DB + replay of the job's event stream).
    const again = await context.newPage();
    await again.goto(baseUrl);
    await again.waitForSelector('#jobs tr[data-job]');
    expect(await again.textContent('#jobs tr .name')).toBe('holiday.mp4');
    await waitFor(async () => (await stepOf(again)) === 'GENERATING' && (await percentOf(again)) >= before, 30000, 50);
    await again.screenshot({ path: join(SHOTS, 'my-page-2-reopened.png'), fullPage: true });

    // The worker resumes; the reopened page receives the rest live, up to DONE and a download link.
    signalGroup(worker, 'SIGCONT');
    await waitFor(async () => (await stepOf(again)) === 'DONE', 180000, 100);
    expect(await percentOf(again)).toBe(100);
    expect(await again.textContent('#jobs tr .result')).toBe('download');
    await again.screenshot({ path: join(SHOTS, 'my-page-3-done.png'), fullPage: true });
  }, 300000);
});
