// Scenario `failover`: every "survive losing a primary" answer in one run, each measured by its own scenario's
// code, one after the other (docs/q3-replication.md):
//   redis-failover    Redis Sentinel: SIGKILL of the queue primary under BullMQ job adds  -> sentinel_outage_ms
//   catalog-failover  replicated catalog: planned switchover (promote) and unplanned failover (SIGKILL +
//                     `stack.mjs failover`) under app writes                             -> switchover_outage_ms, failover_outage_ms
//   galera            Galera catalog: SIGKILL of a node under app writes (the node-kill part only;
//                     `npm run bench -- galera` adds the replication-vs-clustering load comparison) -> galera_outage_ms
// Ratios are the worst run (ms), with each one's p50 beside it. Every part starts private servers of its own.
// Options: --runs 5 (per part), and any option of the parts (--down-after, --interval, --suspect …).
export default {
  name: 'failover',
  description: 'Write outage when a primary is lost: Sentinel failover, catalog switchover and failover, Galera node kill (each ≥ runs, worst and p50)',
  modes: {},
  request() {
    return { method: 'GET', path: '/health/live' };
  },

  async run(ctx, opts) {
    const { join } = await import('node:path');
    const { pathToFileURL } = await import('node:url');
    const part = async (name, extra = {}) => {
      const scenario = (await import(pathToFileURL(join(ctx.root, 'load-tests/scenarios', `${name}.js`)).href)).default;
      ctx.log(`--- ${name}: ${scenario.description}`);
      return scenario.run(ctx, { ...opts, ...extra });
    };
    const redis = await part('redis-failover');
    const catalog = await part('catalog-failover');
    const galera = await part('galera', { compare: 'off' });
    const row = (what, r, key) => `| ${what} | ${r.ratios[`${key}_p50_ms`]} | ${r.ratios[`${key}_ms`]} |`;
    const table = [
      '| primary lost | write outage p50 (ms) | worst run (ms) |',
      '|---|---:|---:|',
      row('redis-queue primary SIGKILLed (Sentinel promotes its replica)', redis, 'sentinel_outage'),
      row('catalog switchover (`stack promote replica-1`, planned)', catalog, 'switchover_outage'),
      row('catalog failover (primary SIGKILLed + `stack failover`)', catalog, 'failover_outage'),
      row('Galera: a node SIGKILLed (writes on the survivors)', galera, 'galera_outage'),
      row('Galera: the node taking writes SIGKILLed (writes move)', galera, 'galera_writer_outage'),
    ].join('\n');
    const pick = (r, ...keys) => Object.fromEntries(keys.map((k) => [k, r.ratios[k]]));
    return {
      tables: [table, ...redis.tables, ...catalog.tables, ...galera.tables],
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
};
