/**
 * Order fixtures that stay unique on the shared test databases, where every run (and every helper's run)
 * leaves its rows behind, and that do not leave a test's precondition to chance.
 */
import { randomInt } from 'node:crypto';
import { encodeOrderId, SEQUENCE_BITS } from '#libs/db';
import { signUp, type TestApi } from './api.js';

const DAY_MS = 86_400_000;

/**
 * An order id (and its created_at) for a row a test writes straight to a shard: a random instant of the UTC
 * day starting at `dayStartMs` and a random sequence. A fixed time + sequence repeats across runs as soon as
 * two runs' users share one of the 1,024 buckets, and the (id, created_at) primary key then rejects the
 * fixture ("Duplicate entry"); with ~2^38 choices per bucket and day, that no longer happens.
 */
export function fixtureOrderId(dayStartMs: number, bucket: number): { id: string; createdAt: Date } {
  const t = dayStartMs + randomInt(DAY_MS);
  return { id: encodeOrderId(t, bucket, randomInt(1 << SEQUENCE_BITS)).toString(), createdAt: new Date(t) };
}

/**
 * `perShard` new users on each of `shardCount` order shards (grouped by shard: all of shard 0's first). A
 * user's shard follows a hash of their id, so N random users all land on one of two shards with
 * probability 2^(1-N); a test that needs several shards signs up until each has its share.
 */
export async function signUpOnEveryShard(
  api: TestApi,
  shardOf: (userId: string) => Promise<number>,
  shardCount: number,
  perShard = 1,
): Promise<Awaited<ReturnType<typeof signUp>>[]> {
  const byShard: Awaited<ReturnType<typeof signUp>>[][] = Array.from({ length: shardCount }, () => []);
  // Each sign-up misses a given shard with probability 1 - 1/shardCount: 50 * shardCount * perShard tries
  // leave a chance of failure far below anything a CI run will ever see, and still stop a broken shard map.
  for (let tries = 0; byShard.some((users) => users.length < perShard); tries++) {
    if (tries >= 50 * shardCount * perShard) throw new Error(`signUpOnEveryShard: no user landed on some shard after ${tries} sign-ups (is the bucket map skewed?)`);
    const user = await signUp(api);
    const users = byShard[await shardOf(user.id)];
    if (users.length < perShard) users.push(user);
  }
  return byShard.flat();
}
