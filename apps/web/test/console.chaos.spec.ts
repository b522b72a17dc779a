/**
 * The console's replica experiment in headless Chromium, on the real stack: the admin presses "stop a
 * replica's SQL thread", the page shows the replica leave rotation, and the page is CLOSED mid-run. The run
 * belongs to the server: it finishes, reports 0 stale token reads (naive reads went stale, counted), and
 * leaves the replica's SQL thread running (read from the replica itself, SHOW SLAVE/REPLICA STATUS).
 * A reopened page shows the result. It stops a shared replica's SQL thread: a chaos test, run alone.
 * Then the experiments that kill a shared node for a few seconds and start it again: a replica, redis-cache.
 * Last, the ones that CPU-cap the catalog nodes (cache-modes, replica-scale) or SIGKILL a worker they spawned
 * (worker-kill), each started from its button with the page closed mid-run: the caps are back to what they
 * were, the workers are gone, and the job finished once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DbNodes } from '#libs/db';
import type { Redis } from 'ioredis';
import { createRedis } from '#libs/core';
import { nativeStack, testAdminConfig, testConfig, waitFor } from '#libs/testing';
import { CHROMIUM, hasBrowser, openConsole, runOf, startConsoleRig, type ConsoleRig } from './console-support.js';

const describeWithBrowser = hasBrowser ? describe : describe.skip;
if (!hasBrowser) console.warn(`${CHROMIUM} is missing (apt-get install -y chromium): the console chaos browser test is skipped`);

let rig: ConsoleRig;
let db: DbNodes;
let journal: Redis;
/** The catalog nodes' CPU caps before the capping experiments (null: none): what they must be after. */
let capsBefore: Record<string, number | null> | undefined;
const CATALOG = ['primary', 'replica-1', 'replica-2'];
const catalogCaps = async () => Object.fromEntries((await (await nativeStack()).status()).filter((n: any) => CATALOG.includes(n.name)).map((n: any) => [n.name, n.cap ?? null]));

/** Clicks an experiment's button, waits until the page shows it running and the server reports the change made, closes the page. */
async function clickAndClose(name: string, progress: RegExp): Promise<void> {
  const page = await openConsole(rig);
  await page.waitForSelector(`#exp-${name} .run:not([disabled])`, { timeout: 20_000 });
  await page.click(`#exp-${name} .run`);
  await page.waitForSelector(`#exp-${name}[data-state="running"]`, { state: 'attached', timeout: 20_000 });
  // The page shows the newest progress line; the server keeps them all: wait for the change to be made.
  await waitFor(async () => {
    const run = await runOf(rig, name);
    return run.state === 'running' && run.progress.some((l: string) => progress.test(l));
  }, 30_000, 100);
  await page.close();
}

async function finished(name: string): Promise<any> {
  let run: any;
  await waitFor(async () => {
    run = await runOf(rig, name);
    return run.state !== 'running';
  }, 90_000, 250);
  return run;
}
/** ExperimentRunner's undo journal on redis-queue for this test database. */
const JOURNAL = `${testConfig().cache.prefix}console:undo`;
beforeAll(async () => {
  if (!hasBrowser) return;
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 2 });
  journal = createRedis(testConfig().redis.queueUrl, { connectionName: 'console-chaos-spec' });
  // 45 s: the crash test waits for the dead run's deadline before its undo is replayed.
  rig = await startConsoleRig({ LOG_LEVEL: process.env.CONSOLE_LOG_LEVEL || 'warn', CONSOLE_EXPERIMENT_MAX_S: '45', CONSOLE_EXPERIMENT_PRESET: 'short' });
}, 180_000);
afterAll(async () => {
  await rig?.close(); // shop-api's shutdown waits for the run's undos
  // Whatever failed above, the shared replica replicates again.
  const stack = await nativeStack();
  for (const r of ['replica-1', 'replica-2']) await stack.startReplicaSql(r).catch(() => undefined);
  for (const n of await stack.status()) if (['redis-cache', 'replica-1', 'replica-2'].includes(n.name) && n.state !== 'up') await stack.startNode(n.name);
  if (capsBefore) for (const [name, cap] of Object.entries(capsBefore)) await stack.setCpuCap(cap ?? 'off', [name]).catch(() => undefined);
  await db?.close();
  journal?.disconnect();
}, 120_000);

describeWithBrowser('console experiments that stop shared nodes (a replica SQL thread, redis-cache)', () => {
  it('when the page is closed mid-run, then the run still ends with 0 stale token reads, counted stale naive reads, and the SQL thread running again', async () => {
    const page = await openConsole(rig);
    await page.waitForSelector('[data-node="replica-1"] [data-rotation="in"]', { timeout: 20_000 });
    await page.click('#exp-replica-lag .run');
    // The page follows the stack live: replica-1 leaves rotation.
    await page.waitForSelector('[data-node="replica-1"] [data-rotation="out"]', { timeout: 30_000 });
    // As /health says: a replica that does not replicate is not ready (its health check may see it a tick after the router).
    await page.waitForSelector('[data-node="replica-1"][data-state="down"]', { timeout: 15_000 });
    expect((await runOf(rig, 'replica-lag')).state).toBe('running');
    await page.close();

    let run: any;
    await waitFor(async () => {
      run = await runOf(rig, 'replica-lag');
      return run.state !== 'running';
    }, 90_000, 250);
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('done');
    const n = run.result.numbers;
    expect(n.cycles).toBeGreaterThan(20);
    expect(n.staleTokenReads).toBe(0);
    expect(n.tokenReadsOnStopped).toBe(0);
    expect(n.staleNaiveReads).toBeGreaterThan(0);
    expect(n.leftRotationMs).not.toBeNull();
    expect(n.rejoinMs).not.toBeNull();
    expect(run.undone.map((u: any) => [u.what, u.ok])).toEqual([
      ['start the SQL thread of replica-1', true],
      ['delete the experiment’s rows and category', true],
    ]);
    const replica = db.replicas[0];
    const st = await replica.dialect.replicaStatus(replica.ds);
    expect([st.ioRunning, st.sqlRunning]).toEqual([true, true]);

    // A reopened page shows the server's result.
    const again = await openConsole(rig);
    await again.waitForSelector('#exp-replica-lag[data-state="done"] [data-number="staleTokenReads"]', { state: 'attached', timeout: 20_000 });
    expect(await again.textContent('#exp-replica-lag [data-number="staleTokenReads"]')).toBe('0');
    await again.waitForSelector('[data-node="replica-1"] [data-rotation="in"]', { timeout: 20_000 });
  }, 240_000);

  it('when shop-api is stopped (SIGTERM) mid-run, then it starts the SQL thread again and deletes the experiment rows before it exits', async () => {
    const res = await fetch(`${rig.baseUrl}/admin/console/experiments/replica-lag`, { method: 'POST', headers: { authorization: `Bearer ${rig.admin.token}` } });
    expect(res.status).toBe(202);
    await waitFor(async () => {
      const s = (await (await fetch(`${rig.baseUrl}/admin/console/snapshot`, { headers: { authorization: `Bearer ${rig.admin.token}` } })).json()) as any;
      return s.nodes.find((n: any) => n.name === 'replica-1').routing.inRotation === false;
    }, 30_000, 200);
    const exited = new Promise((r) => rig.api.once('exit', r));
    rig.api.kill('SIGTERM');
    await exited;
    const replica = db.replicas[0];
    const st = await replica.dialect.replicaStatus(replica.ds);
    expect([st.ioRunning, st.sqlRunning]).toEqual([true, true]);
    const [left] = await db.primary.ds.query("SELECT COUNT(*) AS n FROM categories WHERE name = 'console experiment'");
    expect(Number(left.n)).toBe(0);
  }, 120_000);

  it('when shop-api is KILLED (SIGKILL) mid-run, then the SQL thread stays stopped until shop-api starts again, which starts it and deletes the rows from the journal', async () => {
    await rig.restartApi();
    const res = await fetch(`${rig.baseUrl}/admin/console/experiments/replica-lag`, { method: 'POST', headers: { authorization: `Bearer ${rig.admin.token}` } });
    expect(res.status).toBe(202);
    await waitFor(async () => {
      const s = (await (await fetch(`${rig.baseUrl}/admin/console/snapshot`, { headers: { authorization: `Bearer ${rig.admin.token}` } })).json()) as any;
      return s.nodes.find((n: any) => n.name === 'replica-1').routing.inRotation === false;
    }, 30_000, 200);
    const exited = new Promise((r) => rig.api.once('exit', r));
    rig.api.kill('SIGKILL');
    await exited;
    const replica = db.replicas[0];
    expect((await replica.dialect.replicaStatus(replica.ds)).sqlRunning).toBe(false); // nothing in the dead process ran
    expect(Object.values(await journal.hgetall(JOURNAL)).map((v) => JSON.parse(v).action.kind).sort()).toEqual(['delete-category', 'start-replica-sql']);
    await rig.restartApi();
    // The restarted API replays the journal once the dead run's deadline (45 s) has passed, then empties it.
    await waitFor(async () => (await journal.hlen(JOURNAL)) === 0, 70_000, 250);
    expect((await replica.dialect.replicaStatus(replica.ds)).sqlRunning).toBe(true);
    const [left] = await db.primary.ds.query("SELECT COUNT(*) AS n FROM categories WHERE name = 'console experiment'");
    expect(Number(left.n)).toBe(0);
  }, 150_000);

  it('when redis-cache is killed under load, then reads keep answering from the database (0 errors), and once it is started again L2 answers again', async () => {
    const res = await fetch(`${rig.baseUrl}/admin/console/experiments/redis-down`, { method: 'POST', headers: { authorization: `Bearer ${rig.admin.token}` } });
    expect(res.status).toBe(202);
    let run: any;
    await waitFor(async () => {
      run = await runOf(rig, 'redis-down');
      return run.state !== 'running';
    }, 90_000, 250);
    expect(run.error).toBeUndefined();
    const n = run.result.numbers;
    expect(n.requestsDuring).toBeGreaterThan(50);
    expect(n.errorsDuring).toBe(0);
    expect(n.fromDbDuring).toBeGreaterThan(0);
    expect(n.recoverMs).not.toBeNull();
    expect(n.l2After).toBeGreaterThan(0);
    expect(run.undone.map((u: any) => [u.what, u.ok])).toEqual([
      ['start redis-cache again', true],
      ['cache mode back to l1l2', true],
    ]);
    expect((await nativeStack().then((s) => s.status())).find((x) => x.name === 'redis-cache')?.state).toBe('up');
    expect(await journal.hlen(JOURNAL)).toBe(0);
  }, 120_000);

  it('when a replica is killed under read load, then no read fails (retried on another node), and once started again it rejoins and serves reads', async () => {
    const res = await fetch(`${rig.baseUrl}/admin/console/experiments/replica-kill`, { method: 'POST', headers: { authorization: `Bearer ${rig.admin.token}` } });
    expect(res.status).toBe(202);
    let run: any;
    await waitFor(async () => {
      run = await runOf(rig, 'replica-kill');
      return run.state !== 'running';
    }, 90_000, 250);
    expect(run.error).toBeUndefined();
    const n = run.result.numbers;
    expect(n.requestsDuring).toBeGreaterThan(50);
    expect(n.failedDuring).toBe(0);
    expect(n.rejoinMs).not.toBeNull();
    expect(n.readsOnTargetAfter).toBeGreaterThan(0);
    expect(run.undone.map((u: any) => [u.what, u.ok])).toEqual([
      ['start replica-2 again', true],
      ['cache mode back to l1l2', true],
    ]);
    const replica = db.replicas[1];
    await waitFor(async () => (await replica.dialect.replicaStatus(replica.ds).catch(() => ({ sqlRunning: false }))).sqlRunning, 20_000, 250);
    expect(await journal.hlen(JOURNAL)).toBe(0);
  }, 120_000);

  it('when the page is closed mid cache-modes run (catalog nodes capped), then it finishes, the cache serves more reads/s with fewer DB loads, and the caps and cache mode are back', async () => {
    capsBefore ??= await catalogCaps();
    await clickAndClose('cache-modes', /capped to|not capped/);
    const run = await finished('cache-modes');
    expect(run.error).toBeUndefined();
    const n = run.result.numbers;
    expect(n.dbLoadsPerS_l1l2).toBeLessThan(n.dbLoadsPerS_off);
    expect(run.undone.every((u: any) => u.ok)).toBe(true);
    expect(run.undone.map((u: any) => u.what)).toContain('cache mode back to l1l2');
    expect(await catalogCaps()).toEqual(capsBefore);
    expect(await journal.hlen(JOURNAL)).toBe(0);
  }, 120_000);

  it('when the page is closed mid replica-scale run, then it finishes with 0 failed reads, the replicas served the reads of their phases (their own Com_select), and the caps are back', async () => {
    capsBefore ??= await catalogCaps();
    await clickAndClose('replica-scale', /capped to/);
    const run = await finished('replica-scale');
    expect(run.error).toBeUndefined();
    const n = run.result.numbers;
    expect(n.failed).toBe(0);
    expect(Math.min(n.rps0, n.rps1, n.rps2)).toBeGreaterThan(0);
    const [none, one, two] = run.result.rows;
    // The servers' own counts: with no replica the primary serves the reads, with two both replicas do.
    expect(none['SELECTs/s on primary (Com_select)']).toBeGreaterThanOrEqual(none['reads/s'] * 0.9);
    expect(one['SELECTs/s on replica-1 (Com_select)']).toBeGreaterThanOrEqual(one['reads/s'] * 0.9);
    expect(two['SELECTs/s on replica-1 (Com_select)']).toBeGreaterThan(two['reads/s'] * 0.3);
    expect(two['SELECTs/s on replica-2 (Com_select)']).toBeGreaterThan(two['reads/s'] * 0.3);
    expect(run.undone.every((u: any) => u.ok)).toBe(true);
    expect(await catalogCaps()).toEqual(capsBefore);
    expect(await journal.hlen(JOURNAL)).toBe(0);
  }, 120_000);

  it('when the page is closed mid worker-kill run, then the job finishes once on the second worker (one DONE, one archive), and the workers, queue and files are gone', async () => {
    await clickAndClose('worker-kill', /worker A started/);
    const run = await finished('worker-kill');
    expect(run.error).toBeUndefined();
    const n = run.result.numbers;
    expect(n.doneEvents).toBe(1);
    expect(n.failedEvents).toBe(0);
    expect(n.archives).toBe(1);
    expect(n.finishedByOtherWorker).toBe(1);
    expect(n.bullmqFinished).toBe(1);
    expect(run.result.rows.some((r: any) => r.step === 'SIGKILL worker A')).toBe(true);
    expect(run.undone.every((u: any) => u.ok)).toBe(true);
    // The workers it spawned are gone (their pids are in the undo list), its queue's keys too.
    for (const u of run.undone) {
      const pid = /pid (\d+)/.exec(u.what)?.[1];
      if (pid) expect(() => process.kill(Number(pid), 0)).toThrow();
    }
    expect(await journal.keys('bull:*-console-*')).toEqual([]);
    expect(await journal.hlen(JOURNAL)).toBe(0);
  }, 120_000);
});
