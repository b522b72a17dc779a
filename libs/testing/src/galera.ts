/**
 * A Galera catalog for tests and benchmarks, started by the real launcher (docker/local/galera.mjs, what
 * `npm run stack -- up --catalog galera` runs) and migrated with the test database. Idempotent: a cluster
 * already running in `dir` is reused. Default: the stack's own cluster (STACK_DIR/galera, :3320-3322); a test
 * that kills nodes passes a `dir` and `basePort` of its own, so it never kills a node someone else reads.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createConnection } from 'mysql2/promise';
import { repoRoot } from '#libs/core';
import { migrateAll } from '#libs/db';
import { TEST_DB, TEST_DB_ADMIN, testConfig } from './test-env.js';

export const GALERA_NODES = ['galera-1', 'galera-2', 'galera-3'] as const;
export type GaleraNodeName = (typeof GALERA_NODES)[number];

interface GaleraModule {
  upGalera(o: object): Promise<Array<{ name: string; port: number; state: string; detail: string }>>;
  galeraStatus(o: object): Promise<Array<{ name: string; port: number; pid: number | null; state: string; detail: string; wsrep?: Record<string, string> }>>;
  killGaleraNode(name: string, o: object): Promise<number | null>;
  startGaleraNode(name: string, o: object): Promise<{ state: string; detail: string }>;
  lastStateTransfer(name: string, o: object): 'IST' | 'SST' | null;
  waitSettled(o: object): Promise<void>;
  downGalera(o: object): Promise<void>;
}

export interface GaleraCatalog {
  ports: Record<GaleraNodeName, number>;
  /** Config overrides that put the API's catalog on this cluster (DB_CATALOG_MODE=galera, DB_GALERA_URLS). */
  overrides: Record<string, string>;
  url(name: GaleraNodeName, account: { user: string; password: string }, database?: string): string;
  /** One query on one node with the harness's admin account. */
  sql<T = any>(name: GaleraNodeName, query: string, params?: unknown[]): Promise<T>;
  kill(name: GaleraNodeName): Promise<number | null>;
  start(name: GaleraNodeName): Promise<{ state: string; detail: string }>;
  status(): ReturnType<GaleraModule['galeraStatus']>;
  lastStateTransfer(name: GaleraNodeName): 'IST' | 'SST' | null;
  /** Every running node Synced in one Primary component for a few seconds: a node lost right after a rejoin can cost the quorum. */
  settled(): Promise<void>;
  /** Stop the cluster (and with `purge`, delete its directory): only for private clusters. */
  down(purge?: boolean): Promise<void>;
}

const APP = { user: 'mallscale_app', password: 'mallscale_app' };

export async function galeraLauncher(): Promise<GaleraModule> {
  return (await import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'galera.mjs')).href)) as GaleraModule;
}

export async function startGaleraCatalog(opts: { dir?: string; basePort?: number } = {}): Promise<GaleraCatalog> {
  const g = await galeraLauncher();
  const o = { ...opts, quiet: true };
  const rows = await g.upGalera(o);
  const ports = Object.fromEntries(rows.map((r) => [r.name, r.port])) as Record<GaleraNodeName, number>;
  const url = (name: GaleraNodeName, a: { user: string; password: string }, database = TEST_DB) =>
    `mysql://${encodeURIComponent(a.user)}:${encodeURIComponent(a.password)}@127.0.0.1:${ports[name]}/${database}`;
  const overrides = { DB_CATALOG_MODE: 'galera', DB_GALERA_URLS: GALERA_NODES.map((n) => url(n, APP)).join(',') };
  await migrateAll(testConfig(overrides), () => undefined);
  return {
    ports,
    overrides,
    url,
    sql: async (name, query, params) => {
      const c = await createConnection({ uri: url(name, TEST_DB_ADMIN), connectTimeout: 3000 });
      try {
        return (await c.query(query, params))[0] as any;
      } finally {
        await c.end();
      }
    },
    kill: (name) => g.killGaleraNode(name, o),
    start: (name) => g.startGaleraNode(name, o),
    status: () => g.galeraStatus(o),
    lastStateTransfer: (name) => g.lastStateTransfer(name, o),
    settled: () => g.waitSettled(o),
    down: (purge = false) => g.downGalera({ ...o, purge }),
  };
}
