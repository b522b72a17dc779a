/**
 * The trade-off console in headless Chromium (Debian's chromium, playwright-core), against shop-api and a
 * shorts-worker started from dist on the real stack: the admin signs in on the page, every node of the
 * topology is drawn, the charts are uPlot canvases, and the stampede experiment's panel shows 1 database
 * load, which the server's own counter (/metrics cache_db_loads_total) agrees with; then the partitions,
 * attribute-filter, hot-user and stampede-fleet (a second shop-api, 1 DB load for the fleet) buttons (short
 * preset), each panel showing the numbers the server recorded.
 * The replica experiment (stops a shared replica's SQL thread) is in console.chaos.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '#libs/testing';
import { hasBrowser, metricTotal, openConsole, runOf, SHOTS, startConsoleRig, TOPOLOGY, CHROMIUM, type ConsoleRig } from './console-support.js';

const describeWithBrowser = hasBrowser ? describe : describe.skip;
if (!hasBrowser) console.warn(`${CHROMIUM} is missing (apt-get install -y chromium): the console browser test is skipped`);

let rig: ConsoleRig;
beforeAll(async () => {
  if (!hasBrowser) return;
  await mkdir(SHOTS, { recursive: true });
  rig = await startConsoleRig({ CONSOLE_EXPERIMENT_PRESET: 'short' });
}, 180_000);
afterAll(async () => {
  await rig?.close();
}, 60_000);

describeWithBrowser('GET /console in headless Chromium', () => {
  it('when the admin signs in, then every topology node is drawn live, and the stampede experiment shows 1 DB load that the server counted too', async () => {
    const page = await openConsole(rig);
    const log: string[] = [];
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    try {
      // Every box, the database nodes up, the worker seen through BullMQ, the replicas in rotation.
      await waitFor(async () => (await page.locator('[data-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')))).length >= TOPOLOGY.length, 20_000, 100);
      const drawn = await page.locator('[data-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
      expect([...drawn].sort()).toEqual([...TOPOLOGY].sort());
      for (const n of ['primary', 'replica-1', 'replica-2', 'shard-0', 'shard-1', 'redis-cache', 'redis-queue']) {
        expect(await page.getAttribute(`[data-node="${n}"]`, 'data-state')).toBe('up');
      }
      expect(await page.locator('[data-rotation="in"]').count()).toBe(2);
      await waitFor(async () => /shorts-worker × 1/.test((await page.textContent('[data-node="workers"]')) ?? ''), 30_000, 200);
      expect(await page.textContent('[data-node="shard-0"]')).toMatch(/buckets: \d+ \(\d+ %\)/);
      // Charts start with the second snapshot (rates need two).
      await waitFor(async () => (await page.locator('[data-chart] canvas').count()) >= 8, 10_000, 100);
      expect(await page.textContent('[data-chart="partitions"]')).toMatch(/rows per monthly partition/);
      expect(await page.textContent('[data-chart="jobs"]')).toMatch(/jobs\/hour/);

      // The stampede experiment, from its button.
      const loads0 = await metricTotal(rig, 'cache_db_loads_total', 'cache="product"');
      await page.click('#exp-stampede .run');
      await page.waitForSelector('#exp-stampede[data-state="done"] [data-number="dbLoads"]', { state: 'attached', timeout: 60_000 });
      expect(await page.textContent('#exp-stampede [data-number="dbLoads"]')).toBe('1');
      expect(await page.textContent('#exp-stampede [data-number="dbLoadsCacheOff"]')).toBe('100');
      expect(await page.textContent('#exp-stampede .headline')).toMatch(/cost 1 database load with the cache \(100 with it off\)/);
      expect(await page.textContent('#exp-stampede .headline')).toContain('docs/q1-hot-products.md');
      const server = await runOf(rig, 'stampede');
      expect(server.result.numbers.dbLoads).toBe(1);
      expect((await metricTotal(rig, 'cache_db_loads_total', 'cache="product"')) - loads0).toBe(101);

      // The experiments that change no shared node, from their buttons: each panel shows the server's numbers.
      // (The ones that stop, kill or cap shared nodes are clicked in console.chaos.spec.ts, which runs alone.)
      for (const [name, keys] of [
        ['stampede-fleet', ['fleetDbLoads', 'dbLoadsHere', 'dbLoadsThere']],
        ['partitions', ['scanRowsPartitioned', 'scanRowsUnpartitioned']],
        ['attribute-filter', ['rowsIndexed', 'rowsEav', 'rowsScan']],
        ['hot-user', ['hotBusiestSharePct', 'spreadBusiestSharePct']],
      ] as const) {
        await page.click(`#exp-${name} .run`);
        await page.waitForSelector(`#exp-${name}[data-state="done"] [data-number="${keys[0]}"]`, { state: 'attached', timeout: 90_000 });
        const run = await runOf(rig, name);
        for (const k of keys) expect(await page.textContent(`#exp-${name} [data-number="${k}"]`)).toBe(String(run.result.numbers[k]));
        expect(await page.textContent(`#exp-${name} .headline`)).toContain(run.result.doc);
      }
      expect(await page.textContent('#exp-hot-user [data-number="hotBusiestSharePct"]')).toBe('100');
      expect(await page.textContent('#exp-stampede-fleet [data-number="fleetDbLoads"]')).toBe('1');
      await page.screenshot({ path: join(SHOTS, 'console.png'), fullPage: true });
    } catch (e) {
      await page.screenshot({ path: join(SHOTS, 'console-failed.png'), fullPage: true }).catch(() => undefined);
      throw new Error(`${(e as Error).message}; browser: ${log.join(' | ')}`);
    }
    expect(log).toEqual([]);
  }, 360_000);
});
