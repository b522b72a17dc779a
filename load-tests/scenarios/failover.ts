// Scenario `failover`: every "survive losing a primary" answer in one run, each measured by its own scenario's
// code, one after the other (docs/q3-replication.md):
//   redis-failover    Redis Sentinel: SIGKILL of the queue primary under BullMQ job adds  -> sentinel_outage_ms
//   catalog-failover  replicated catalog: planned switchover (promote) and unplanned failover (SIGKILL +
//                     `stack.mjs failover`) under app writes                             -> switchover_outage_ms, failover_outage_ms
//   galera            Galera catalog: SIGKILL of a node under app writes (the node-kill part only;
//                     `npm run bench -- galera` adds the replication-vs-clustering load comparison) -> galera_outage_ms
// Ratios are the worst run (ms), with each one's p50 beside it. Every part starts private servers of its own.
// Options: --runs 5 (per part), and any option of the parts (--down-after, --interval, --suspect …).
import type { Scenario } from '../runner/bench.js';
import catalogFailover from './catalog-failover.js';
import galeraScenario from './galera.js';
import redisFailover from './redis-failover.js';
import { runOnly } from './support.js';

type Result = Awaited<ReturnType<NonNullable<Scenario['run']>>>;

export default {
  name: 'failover',
  description: 'Write outage when a primary is lost: Sentinel failover, catalog switchover and failover, Galera node kill (each ≥ runs, worst and p50)',
  ...runOnly,

  async run(ctx, opts) {
    const part = (scenario: Scenario, extra: Record<string, string> = {}) => {
      ctx.log(`--- ${scenario.name}: ${scenario.description}`);
      return scenario.run!(ctx, { ...opts, ...extra });
    };
    const redis = await part(redisFailover);
    const catalog = await part(catalogFailover);
    const galera = await part(galeraScenario, { compare: 'off' });
    const row = (what: string, r: Result, key: string) => `| ${what} | ${r.ratios[`${key}_p50_ms`]} | ${r.ratios[`${key}_ms`]} |`;
    const table = [
      '| primary lost | write outage p50 (ms) | worst run (ms) |',
      '|---|---:|---:|',
      row('redis-queue primary SIGKILLed (Sentinel promotes its replica)', redis, 'sentinel_outage'),
      row('catalog switchover (`stack promote replica-1`, planned)', catalog, 'switchover_outage'),
      row('catalog failover (primary SIGKILLed + `stack failover`)', catalog, 'failover_outage'),
      row('Galera: a node SIGKILLed (writes on the survivors)', galera, 'galera_outage'),
      row('Galera: the node taking writes SIGKILLed (writes move)', galera, 'galera_writer_outage'),
    ].join('\n');
    const pick = (r: Result, ...keys: string[]) => Object.fromEntries(keys.map((k) => [k, r.ratios[k]]));
    return {
      tables: [table, ...(redis.tables ?? []), ...(catalog.tables ?? []), ...(galera.tables ?? [])],
      ratios: {
        ...pick(redis, 'sentinel_outage_ms', 'sentinel_outage_p50_ms'),
        ...pick(catalog, 'switchover_outage_ms', 'switchover_outage_p50_ms', 'failover_outage_ms', 'failover_outage_p50_ms'),
        ...pick(galera, 'galera_outage_ms', 'galera_outage_p50_ms', 'galera_writer_outage_ms', 'galera_writer_outage_p50_ms'),
        jobs_lost: redis.ratios.jobs_lost,
        catalog_writes_lost: catalog.ratios.writes_lost,
        galera_writes_lost: galera.ratios.writes_lost,
      },
      details: { 'redis-failover': redis.details, 'catalog-failover': catalog.details, galera: galera.details },
    };
  },
} satisfies Scenario;
