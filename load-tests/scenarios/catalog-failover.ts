// Scenario `catalog-failover`: what a change of catalog primary costs the app's writes, measured
// (docs/q3-replication.md). Each run starts a private catalog of its own (libs/testing startPrivateCatalog:
// primary + 2 GTID replicas on 4327-4329 in a temp STACK_DIR; the shared :3307-:3309 are never touched) and
// writes through the app's own code (libs/db DbNodes + ReplicaMonitor + ReplicaRouter.write, the path of every
// catalog write), one INSERT every ~5 ms, while the operator's commands change the primary:
//   1. planned switchover: `stack.mjs promote replica-1` (catch up, old primary read_only, promote by GTID, repoint);
//   2. unplanned failover: SIGKILL replica-1 (now the primary), then at once `stack.mjs failover`.
// Per run:
//   switchover_outage_ms  longest gap between two acknowledged writes across the switchover (what a writer waits)
//   read_only_ms          the launcher's read-only window (old primary read_only -> candidate writable)
//   failover_outage_ms    the same gap across kill + failover command (an operator who reacts at once: a real
//                         one adds the time to notice; Orchestrator/MaxScale-style automation adds its own detection)
//   failover_cmd_ms       how long `stack.mjs failover` itself took
//   writes_lost           writes acknowledged by the killed primary that the promoted node never received
//                         (asynchronous replication: the unshipped tail)
//   other_errors          write errors that were not the retryable 503 (must be 0)
// Options: --runs 5, --interval 500 (ms, REPLICA_MONITOR_INTERVAL_MS: how often the API looks for the primary).
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig } from '#libs/core';
import { DbNodes, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { startPrivateCatalog, type CatalogNodeName } from '#libs/testing';
import type { Scenario } from '../runner/bench.js';
import { runOnly } from './support.js';

const BASE_PORT = 4327;
const DB = 'mallscale_bench_failover';
const ADMIN = { user: 'mallscale', password: 'mallscale' };

export default {
  name: 'catalog-failover',
  description: 'Catalog switchover (promote) and failover (SIGKILL + failover) under app writes; write outage and lost writes per run',
  ...runOnly,

  async run(ctx, opts) {
    const runs = Number(opts.runs ?? 5);
    const intervalMs = Number(opts.interval ?? 500);
    type Run = Record<string, number | string>;
    const results: Run[] = [];

    for (let run = 1; run <= runs; run++) {
      const cat = await startPrivateCatalog(BASE_PORT);
      ctx.onCleanup(() => cat.destroy()); // an interrupted run leaves no server behind
      let nodes: DbNodes | undefined, monitor: ReplicaMonitor | undefined;
      try {
        const url = (n: CatalogNodeName) => cat.url(n, ADMIN, DB);
        const setup = await mysql.createConnection({ uri: cat.url('primary', ADMIN, '') });
        await setup.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
        await setup.query(`CREATE TABLE ${DB}.w (id INT PRIMARY KEY, at BIGINT NOT NULL)`);
        await setup.end();
        // The endpoints as the app reads them (libs/core config), from the same variables.
        const config = loadConfig({ DB_PRIMARY_URL: url('primary'), DB_REPLICA_URLS: `${url('replica-1')},${url('replica-2')}`, REPLICA_MONITOR_INTERVAL_MS: String(intervalMs) });
        nodes = await DbNodes.connect({ ...config.db, shards: [], poolSize: 8 });
        monitor = new ReplicaMonitor(nodes, { intervalMs: config.replication.monitorIntervalMs });
        await monitor.start();
        const router = new ReplicaRouter(nodes, monitor);

        const acked: Array<{ id: number; at: number }> = [];
        let unavailable = 0, other = 0, lastOther: string | null = null, stop = false, next = 0;
        const writer = (async () => {
          while (!stop) {
            const id = ++next;
            try {
              await router.write((on) => on.query(`INSERT INTO w (id, at) VALUES (?, ?)`, [id, Date.now()]));
              acked.push({ id, at: Date.now() });
            } catch (e) {
              if ((e as { status?: number }).status === 503) unavailable++;
              else { other++; lastOther = (e as Error).message; }
            }
            await sleep(5);
          }
        })();
        const gapAcross = (from: number, to: number) => {
          const inWindow = acked.filter((a) => a.at >= from && a.at <= to);
          return inWindow.slice(1).reduce((m, a, i) => Math.max(m, a.at - inWindow[i].at), 0);
        };
        const ackAfter = (t: number) => async () => { for (const end = Date.now() + 60_000; Date.now() < end; await sleep(20)) if (acked.some((a) => a.at > t)) return; };

        // 1. planned switchover
        await sleep(1000);
        const s0 = Date.now();
        const sw = await cat.promote('replica-1');
        await ackAfter(Date.now())();
        await sleep(500);
        const switchover = gapAcross(s0 - 500, Date.now());

        // 2. unplanned failover
        await sleep(500);
        const f0 = Date.now();
        await cat.cli('kill', 'replica-1');
        const killedAcked = acked.filter((a) => a.at <= Date.now()).map((a) => a.id);
        const fo = await cat.failover();
        await ackAfter(Date.now())();
        await sleep(500);
        stop = true;
        await writer;
        const failoverGap = gapAcross(f0 - 500, Date.now());
        const have = new Set((await nodes.primary.ds.query('SELECT id FROM w')).map((r: { id: unknown }) => Number(r.id)));
        const r: Run = {
          run,
          switchover_outage_ms: switchover,
          read_only_ms: sw.readOnlyMs ?? -1, // a promote always reports it
          promote_cmd_ms: sw.totalMs,
          failover_outage_ms: failoverGap,
          failover_cmd_ms: fo.totalMs,
          promoted: fo.primary,
          writes_acked: acked.length,
          writes_503: unavailable,
          writes_lost: killedAcked.filter((id) => !have.has(id)).length,
          other_errors: other,
          api_primary: nodes.primary.name,
        };
        if (lastOther) r.last_other_error = lastOther;
        results.push(r);
        ctx.log(`run ${run}: ${JSON.stringify(r)}`);
      } finally {
        await monitor?.stop();
        await nodes?.close();
        await cat.destroy();
      }
    }

    const vals = (k: string) => results.map((r) => Number(r[k])).sort((a, b) => a - b);
    const p50 = (k: string) => vals(k)[Math.floor((vals(k).length - 1) / 2)];
    const max = (k: string) => vals(k).at(-1) ?? 0;
    const sum = (k: string) => results.reduce((s, r) => s + Number(r[k]), 0);
    const cols = ['switchover_outage_ms', 'read_only_ms', 'promote_cmd_ms', 'failover_outage_ms', 'failover_cmd_ms', 'writes_acked', 'writes_503', 'writes_lost', 'other_errors'];
    const table = [
      `| run | ${cols.join(' | ')} |`,
      `|---|${cols.map(() => '---:').join('|')}|`,
      ...results.map((r) => `| ${r.run} | ${cols.map((c) => String(r[c])).join(' | ')} |`),
      `| **p50** | ${p50('switchover_outage_ms')} | ${p50('read_only_ms')} | ${p50('promote_cmd_ms')} | ${p50('failover_outage_ms')} | ${p50('failover_cmd_ms')} | | | | |`,
      `| **max** | ${max('switchover_outage_ms')} | ${max('read_only_ms')} | ${max('promote_cmd_ms')} | ${max('failover_outage_ms')} | ${max('failover_cmd_ms')} | ${sum('writes_acked')} (sum) | ${sum('writes_503')} (sum) | ${sum('writes_lost')} (sum) | ${sum('other_errors')} (sum) |`,
    ].join('\n');
    return {
      tables: [table],
      ratios: {
        switchover_outage_ms: max('switchover_outage_ms'),
        switchover_outage_p50_ms: p50('switchover_outage_ms'),
        failover_outage_ms: max('failover_outage_ms'),
        failover_outage_p50_ms: p50('failover_outage_ms'),
        writes_lost: sum('writes_lost'),
        other_errors: sum('other_errors'),
      },
      details: { runs: results, monitorIntervalMs: intervalMs, writeEveryMs: 5, ports: [BASE_PORT, BASE_PORT + 1, BASE_PORT + 2] },
    };
  },
} satisfies Scenario;
