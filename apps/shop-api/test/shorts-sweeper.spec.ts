/**
 * The enqueue gap: a job row written, the API gone before queue.add. Two real API instances share one
 * queue; rows are planted in the real catalog DB as a crashed instance would have left them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { RedisClients } from '#libs/core';
import { DbNodes } from '#libs/db';
import { signUp, type TestApi } from '#libs/testing';
import { ShortsEnqueueSweeper } from '../src/shorts/enqueue.sweeper.js';
import { ShortsService } from '../src/shorts/shorts.service.js';
import { startApi } from './support.js';
import { uniqueQueue } from './shorts-support.js';

const QUEUE = uniqueQueue('sweep');
// The timer never fires during the test (1 h); rounds are driven by calling sweepOnce().
const env = { SHORTS_QUEUE: QUEUE, SHORTS_SWEEP_AFTER_S: '30', SHORTS_SWEEP_INTERVAL_MS: '3600000' };
let a: TestApi;
let b: TestApi;

beforeAll(async () => {
  [a, b] = await Promise.all([startApi(env), startApi(env)]);
}, 60000);

afterAll(async () => {
  const queue = a?.app.get(ShortsService).queue;
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await a?.close();
  await b?.close();
});

const plant = async (userId: string, ageS: number, queue = QUEUE) => {
  const id = randomUUID().replace(/-/g, '');
  await a.app.get(DbNodes).primary.ds.query(
    `INSERT INTO shorts_jobs (id, user_id, file_name, size_bytes, source_key, queue, created_at)
     VALUES (?, ?, 'lost.mp4', 10, ?, ?, NOW(3) - INTERVAL ? SECOND)`,
    [id, userId, `uploads/${id}/source`, queue, ageS],
  );
  return id;
};

describe('ShortsEnqueueSweeper (QUEUED jobs whose queue entry is missing)', () => {
  it('when an old QUEUED job has no BullMQ job, then exactly one instance re-adds it once, with the job id as BullMQ id', async () => {
    const user = await signUp(a);
    const lost = await plant(user.id, 120);
    const young = await plant(user.id, 0);
    const otherQueue = await plant(user.id, 120, `${QUEUE}-other`);
    const sweepers = [a, b].map((x) => x.app.get(ShortsEnqueueSweeper));
    await a.app.get(RedisClients).queue.del(sweepers[0].lockKey);

    const rounds = await Promise.all(sweepers.map((s) => s.sweepOnce()));
    expect(rounds.filter((r) => r.ran)).toHaveLength(1);
    expect(rounds.find((r) => r.ran)!.requeued).toEqual([lost]);

    const queue = a.app.get(ShortsService).queue;
    const job = await queue.getJob(lost);
    expect(job?.id).toBe(lost);
    expect(job?.data).toEqual({ jobId: lost, userId: user.id, sourceKey: `uploads/${lost}/source` });
    expect(await queue.getJob(young)).toBeUndefined();
    expect(await queue.getJob(otherQueue)).toBeUndefined();

    // Next round (lock expired or released): the job exists now, so nothing is added twice.
    await a.app.get(RedisClients).queue.del(sweepers[0].lockKey);
    const again = await sweepers[1].sweepOnce();
    expect(again).toEqual({ ran: true, requeued: [] });
    expect(await queue.getJobCountByTypes('waiting', 'delayed', 'active')).toBe(1);
  });

  it('when the lock of this interval is held, then a round does nothing', async () => {
    const sweeper = b.app.get(ShortsEnqueueSweeper);
    await b.app.get(RedisClients).queue.set(sweeper.lockKey, 'someone-else', 'PX', 60000);
    expect(await sweeper.sweepOnce()).toEqual({ ran: false, requeued: [] });
  });
});
