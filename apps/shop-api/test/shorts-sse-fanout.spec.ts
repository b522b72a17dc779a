/**
 * Many browsers following one job on one instance: ProgressHub wakes them all in the same tick and their
 * reads share one XRANGE. What must hold is delivery: each stream gets every event once, in order.
 * The test plays the worker (appends to the job's stream itself); its queue has no worker.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisClients } from '#libs/core';
import { JobProgressStream } from '#libs/shorts-jobs';
import { signUp, waitFor, type TestApi, readSse } from '#libs/testing';
import { ProgressHub } from '../src/shorts/progress.hub.js';
import { startApi } from './support.js';
import { uniqueQueue, uploadWhole } from './shorts-support.js';

const QUEUE = uniqueQueue('fanout');
let api: TestApi;

beforeAll(async () => {
  api = await startApi({ SHORTS_QUEUE: QUEUE, SHORTS_SWEEP_INTERVAL_MS: '0', SHORTS_SSE_HEARTBEAT_MS: '60000', SHORTS_MAX_SSE_STREAMS_PER_USER: '100' });
}, 60000);

afterAll(async () => {
  await api?.close();
});

describe('GET /shorts/jobs/:id/events (SSE fan-out on one instance)', () => {
  it('when 25 clients follow the same job, then each receives every event exactly once and in order', async () => {
    const user = await signUp(api);
    const id = await uploadWhole(api.url, user.token, Buffer.from('tiny, never processed'), 'fan.txt');
    const { token } = (await (await fetch(`${api.url}/shorts/jobs/${id}/events-token`, { method: 'POST', headers: { authorization: `Bearer ${user.token}` } })).json()) as { token: string };
    const isEnd = (ev: { data: { step: string } }[]) => ev.some((e) => e.data.step === 'DONE');
    const readers = Array.from({ length: 25 }, () => readSse(`${api.url}/shorts/jobs/${id}/events?token=${token}`, {}, isEnd, 60000));
    const hub = api.app.get(ProgressHub);
    await waitFor(async () => hub.connections >= 25, 20000, 20);

    const progress = new JobProgressStream(api.app.get(RedisClients).queue, QUEUE);
    for (let p = 1; p <= 40; p++) await progress.append({ jobId: id, step: 'GENERATING', percent: p });
    await progress.append({ jobId: id, step: 'DONE', percent: 100 });

    const all = (await progress.after(id)).map((e) => e.id);
    for (const r of await Promise.all(readers)) {
      expect(r.status).toBe(200);
      expect(r.events.map((e) => e.id)).toEqual(all);
      expect(r.events.filter((e) => e.data.step === 'GENERATING').map((e) => e.data.percent)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    }
  }, 90000);
});
