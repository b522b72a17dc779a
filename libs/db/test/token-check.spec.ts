/**
 * ReplicaRouter.acceptToken on the real primary and replicas: a client token that names writes the
 * primary never made is refused before any read waits for it, and a flood of such tokens shares the
 * primary position reads instead of costing one each. Counted with the router's own metrics and by
 * counting the position reads the primary's dialect is asked for (the real queries still run).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Metrics } from '#libs/core';
import { ConsistencyToken, DbNodes, InvalidConsistencyToken, ReplicaMonitor, ReplicaRouter, TokenAheadOfPrimary } from '#libs/db';
import { testConfig } from '#libs/testing';

let db: DbNodes;
let monitor: ReplicaMonitor;
let router: ReplicaRouter;
let positionReads = 0;
const metrics = new Metrics({ defaultMetrics: false });
const counter = async (name: string, labels: Record<string, string> = {}) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
const ahead = (pos: string) => pos.split(',').map((g) => g.replace(/-(\d+)$/, (_, n: string) => `-${BigInt(n) + 1_000_000_000n}`)).join(',');

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 8 });
  monitor = new ReplicaMonitor(db, { intervalMs: 250, maxLagMs: 1000, metrics });
  await monitor.start();
  router = new ReplicaRouter(db, monitor, { waitMs: 200, metrics });
  const dialect = db.primary.dialect;
  const read = dialect.gtidPosition.bind(dialect);
  dialect.gtidPosition = async (conn) => {
    if (conn === db.primary.ds) positionReads++; // the router's reads; the monitor uses connections of its own
    return read(conn);
  };
});
afterAll(async () => {
  await monitor?.stop();
  await db?.close();
});

describe('ReplicaRouter.acceptToken', () => {
  it('a token ahead of the primary is refused (TokenAheadOfPrimary, code invalid_consistency_token) and no read waits for it', async () => {
    const forged = ahead(await db.primary.dialect.gtidPosition(db.primary.ds));
    const waits = await counter('db_token_waits_total');
    const err = await router.acceptToken(forged).catch((e) => e);
    expect(err).toBeInstanceOf(TokenAheadOfPrimary);
    expect(err).toBeInstanceOf(InvalidConsistencyToken);
    expect(err.code).toBe('invalid_consistency_token');
    expect(await counter('db_token_waits_total')).toBe(waits);
  });

  it('a malformed token is still InvalidConsistencyToken with code bad_request', async () => {
    const err = await router.acceptToken("0-1-1' OR 1=1").catch((e) => e);
    expect(err).toBeInstanceOf(InvalidConsistencyToken);
    expect(err).not.toBeInstanceOf(TokenAheadOfPrimary);
    expect(err.code).toBe('bad_request');
  });

  it("a token of a write made a moment ago is accepted, even before the monitor's next sample", async () => {
    const { token } = await router.write((on) => on.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'token check', '{}')`, [`tc-${randomUUID().slice(0, 8)}`]));
    expect(token).not.toBeNull();
    expect((await router.acceptToken(token!.gtid)).gtid).toBe(token!.gtid);
  });

  it('200 concurrent forged tokens are all refused with a handful of primary position reads, not 200', async () => {
    const forged = ConsistencyToken.parse(ahead(await db.primary.dialect.gtidPosition(db.primary.ds)), db.primary.dialect);
    const refused = await counter('db_token_checks_total', { result: 'refused' });
    positionReads = 0;
    const answers = await Promise.all(Array.from({ length: 200 }, () => router.isReachable(forged)));
    expect(answers.every((ok) => ok === false)).toBe(true);
    expect(await counter('db_token_checks_total', { result: 'refused' })).toBe(refused + 200);
    expect(positionReads).toBeLessThanOrEqual(2);
  });
});
