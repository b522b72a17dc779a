/**
 * CI's short run of `npm run bench -- replica-reads`: caps every database node of the stack at 0.1 CPU
 * (so it is a chaos file: it runs alone, after the main suite) and asserts the ratio measured in this same
 * run, with margin: two replicas serve at least 1.4x the reads of the primary alone (the full benchmark's
 * goal is 1.8x; docs/q3-replication-routing.md). Skipped where cgroup CPU caps are not available, since
 * an uncapped database on a 2-core box is not the bottleneck and the ratio would measure nothing.
 */
import { describe, expect, it } from '@jest/globals';
import { accessSync, constants } from 'node:fs';
import { testEnv } from '#libs/testing';

function cgroupWritable(): boolean {
  try {
    accessSync('/sys/fs/cgroup/cpu', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const maybe = cgroupWritable() ? it : it.skip;

describe('npm run bench -- replica-reads (short)', () => {
  maybe(
    'when the database nodes are capped equally, then two replicas serve at least 1.4x the product reads of the primary alone',
    async () => {
      // The API processes the runner starts read the test databases (migrated by globalSetup).
      const env = testEnv();
      for (const k of ['DB_PRIMARY_URL', 'DB_REPLICA_URLS', 'DB_SHARD_URLS', 'REDIS_CACHE_URL', 'REDIS_QUEUE_URL', 'JWT_SECRET']) process.env[k] = env[k as keyof typeof env];
      process.env.BENCH_PORT_BASE ??= '31400'; // below the ephemeral range (32768+): a client socket's local port can block a listen
      const { runBench } = await import('../../../load-tests/runner/bench.js');
      const out = await runBench('replica-reads', { duration: '6s', warmup: '3s', modes: 'primary-only,two-replicas', write: 'false' });
      expect(out.modes['two-replicas'].errors).toBe(0);
      expect(out.ratios.two_replicas_vs_primary).toBeGreaterThanOrEqual(1.4);
    },
    240_000,
  );
});
