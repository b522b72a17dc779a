/**
 * A private catalog (primary + 2 GTID replicas, nothing else) started by the real launcher
 * (docker/local/stack.mjs, STACK_NODES / STACK_DIR / STACK_PORT_*) for tests and benchmarks that promote a
 * replica or kill the primary: the shared stack's catalog (:3307-:3309) is never promoted, stopped or
 * repointed. Every operation runs the operator's own command line (`node docker/local/stack.mjs promote …`),
 * as a child process with this catalog's environment, so what is tested is what an operator runs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '#libs/core';

const run = promisify(execFile);
export const CATALOG_NODES = ['primary', 'replica-1', 'replica-2'] as const;
export type CatalogNodeName = (typeof CATALOG_NODES)[number];

export interface PromoteResult {
  primary: CatalogNodeName;
  previous: CatalogNodeName;
  gtid: string;
  totalMs: number;
  readOnlyMs?: number;
  positions?: Record<string, string>;
  repointed: Record<string, string>;
}

export interface PrivateCatalog {
  dir: string;
  ports: Record<CatalogNodeName, number>;
  /** The environment the launcher runs with for this catalog. */
  env: Record<string, string>;
  /** `node docker/local/stack.mjs <args>` on this catalog; stdout. Rejects with stderr on a non-zero exit. */
  cli(...args: string[]): Promise<string>;
  promote(name: CatalogNodeName): Promise<PromoteResult>;
  failover(): Promise<PromoteResult>;
  /** The role each node has now, from the launcher's status. */
  roles(): Promise<Record<CatalogNodeName, string>>;
  /** mysql:// URL of a node with the given account and database. */
  url(name: CatalogNodeName, account: { user: string; password: string }, database: string): string;
  /** Run SQL as the server's root over its unix socket (what the launcher does): e.g. SET GLOBAL read_only. */
  rootSql(name: CatalogNodeName, sql: string): Promise<unknown>;
  /** Stop every node and delete the directory. */
  destroy(): Promise<void>;
}

/** Start a private catalog on `basePort`, +1, +2 (default 4307-4309). */
export async function startPrivateCatalog(basePort = 4307): Promise<PrivateCatalog> {
  const dir = await mkdtemp(join(tmpdir(), 'mallscale-catalog-'));
  const ports = { primary: basePort, 'replica-1': basePort + 1, 'replica-2': basePort + 2 };
  const env: Record<string, string> = {
    STACK_DIR: dir,
    STACK_NODES: CATALOG_NODES.join(','),
    STACK_PORT_PRIMARY: String(ports.primary),
    STACK_PORT_REPLICA_1: String(ports['replica-1']),
    STACK_PORT_REPLICA_2: String(ports['replica-2']),
  };
  const launcher = join(repoRoot(), 'docker', 'local', 'stack.mjs');
  const childEnv = { ...process.env, ...env };
  delete childEnv.STACK_DB_CPU;
  delete childEnv.STACK_REDIS_CPU;
  const cli = async (...args: string[]) => {
    try {
      return (await run(process.execPath, [launcher, ...args], { env: childEnv, timeout: 180_000 })).stdout;
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw new Error(`stack.mjs ${args.join(' ')} failed: ${err.stderr || err.message}\n${err.stdout ?? ''}`);
    }
  };
  const firstLineJson = (out: string) => JSON.parse(out.split('\n')[0]) as PromoteResult;
  const catalog: PrivateCatalog = {
    dir,
    ports,
    env,
    cli,
    promote: async (name) => firstLineJson(await cli('promote', name)),
    failover: async () => firstLineJson(await cli('failover')),
    roles: async () => {
      const out = await cli('status').catch((e: Error) => e.message); // status exits 1 while a node is down
      const roles = {} as Record<CatalogNodeName, string>;
      for (const n of CATALOG_NODES) roles[n] = new RegExp(`^${n}\\s*\\|\\s*(\\w+)`, 'm').exec(out)?.[1] ?? '?';
      return roles;
    },
    url: (name, a, database) => `mysql://${encodeURIComponent(a.user)}:${encodeURIComponent(a.password)}@127.0.0.1:${ports[name]}/${database}`,
    rootSql: async (name, sql) => {
      const { createConnection } = await import('mysql2/promise');
      const c = await createConnection({ socketPath: join(dir, name, 'mysqld.sock'), user: 'root', multipleStatements: true });
      try {
        return (await c.query(sql))[0];
      } finally {
        await c.end();
      }
    },
    destroy: async () => {
      await cli('down').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await cli('up');
  } catch (e) {
    await catalog.destroy();
    throw e;
  }
  return catalog;
}
