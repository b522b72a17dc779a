import { describe, expect, it } from '@jest/globals';
import { BUCKETS, bucketOf, OrderIdGenerator, OrderShardRouter } from '#libs/db';
import { withNodes } from '#libs/testing';

describe('OrderShardRouter', () => {
  it('when the same user is routed twice (or by the id of one of their orders), then the shard is the same', async () => {
    await withNodes(async (db) => {
      const router = new OrderShardRouter(db.primary.ds, db.shards.length);
      const ids = new OrderIdGenerator();
      for (const user of ['1', '42', '1000003', '9007199254740993']) {
        const a = await router.shardFor(user);
        expect(await router.shardFor(user)).toEqual(a);
        expect(await new OrderShardRouter(db.primary.ds, db.shards.length).shardFor(user)).toEqual(a);
        expect(await router.shardForOrder(ids.next(bucketOf(user)))).toEqual(a);
        expect(await router.shardForOrder(ids.next(bucketOf(user)).toString())).toEqual(a);
      }
      const counts = await router.bucketCounts();
      expect(counts.reduce((s, n) => s + n, 0)).toBe(BUCKETS);
    });
  });

  it('when 200k sequential users are spread over the default map, then every shard is within 5% of the mean', () => {
    const shards = 2;
    const counts = new Array(shards).fill(0);
    for (let u = 1; u <= 200_000; u++) counts[bucketOf(u) % shards]++;
    const mean = 200_000 / shards; // the bench (orders-growth) measures 1M
    expect(Math.max(...counts.map((c) => Math.abs(c - mean) / mean))).toBeLessThan(0.05);
  });

  it('when the map names a shard that is not configured, then reload refuses to route', async () => {
    await withNodes(async (db) => {
      // One configured shard, a map that (on a two-shard stack) points half the buckets at shard 1.
      if (db.shards.length < 2) return;
      await expect(new OrderShardRouter(db.primary.ds, 1).reload()).rejects.toThrow(/only 1 shards are configured/);
    });
  });
});
