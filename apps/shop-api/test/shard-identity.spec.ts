/**
 * Each shard records its position in DB_SHARD_URLS on its first migrate; a list in another order would send
 * users' orders to another user's shard, so start-up (and a later migrate) refuses it.
 */
import { describe, expect, it } from '@jest/globals';
import { DbNodes, ddlTopology, migrate } from '#libs/db';
import { testConfig, testEnv } from '#libs/testing';
import { startApi } from './support.js';

const [first, second] = testEnv().DB_SHARD_URLS.split(',');
const swapped = { DB_SHARD_URLS: `${second},${first}` };
const where = (raw: string) => {
  const u = new URL(raw);
  return `${u.hostname}:${u.port}${u.pathname}`;
};

describe('shard identity', () => {
  it('a DB_SHARD_URLS list in the wrong order is refused at start-up', async () => {
    await expect(startApi(swapped)).rejects.toThrow(
      `DB_SHARD_URLS is in the wrong order: DB_SHARD_URLS[0] (${where(second)}) is shard-1, not shard-0`,
    );
    await expect(DbNodes.connect({ ...testConfig(swapped).db, poolSize: 1 })).rejects.toThrow(/DB_SHARD_URLS\[0\] .* is shard-1, not shard-0/);
  });

  it('a DB_SHARD_URLS list that names one shard twice is refused at start-up', async () => {
    await expect(startApi({ DB_SHARD_URLS: `${first},${first}` })).rejects.toThrow(
      `DB_SHARD_URLS is in the wrong order: DB_SHARD_URLS[1] (${where(first)}) is shard-0, not shard-1`,
    );
  });

  it('migrating a shard at another position than its first migrate is refused, and its identity is kept', async () => {
    const shards = ddlTopology(testConfig(swapped).db).shards;
    await expect(migrate(shards[0], 'shard', () => undefined, { shardIndex: 0 })).rejects.toThrow(/DB_SHARD_URLS\[0\] .* is shard-1, not shard-0/);
    // Refused, not rewritten: the correctly ordered list still starts.
    const db = await DbNodes.connect({ ...testConfig().db, replicas: [], poolSize: 1 });
    try {
      const ids = await Promise.all(db.shards.map(async (s) => Number((await s.ds.query('SELECT shard FROM shard_identity'))[0].shard)));
      expect(ids).toEqual([0, 1]);
    } finally {
      await db.close();
    }
  });

  it('a correctly ordered DB_SHARD_URLS list starts', async () => {
    const api = await startApi();
    try {
      const res = await fetch(`${api.url}/health`);
      expect(res.status).toBe(200);
    } finally {
      await api.close();
    }
  });
});
