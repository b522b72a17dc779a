/**
 * The one door from the console to the database servers' replication threads: the native stack's own
 * launcher (docker/local/stack.mjs, STACK_DIR), which knows only the project's nodes. A replica is
 * touched only when the app's configured replica is on loopback at the port the launcher runs it on.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ApiError, repoRoot } from '#libs/core';
import type { DbNode } from '#libs/db';

export interface StackControl {
  stopReplicaSql(node: DbNode): Promise<void>;
  startReplicaSql(node: DbNode): Promise<void>;
  /** SIGKILL a replica's server process / start it again (it resumes replicating from its datadir). */
  killReplica(node: DbNode): Promise<void>;
  startReplica(node: DbNode): Promise<void>;
  /** The native stack's redis-cache node behind `url` (SIGKILL / start again), or 409 when it is not one. */
  killRedisCache(url: string): Promise<void>;
  startRedisCache(url: string): Promise<void>;
  /**
   * CPU caps (cgroup CFS quota, the launcher's `cap`) on database nodes of the native stack, `cpu` in cores or
   * null to lift them; `applied` false (with the reason) where no cgroup cpu controller is writable.
   */
  setCpuCap(nodes: DbNode[], cpu: number | null): Promise<{ applied: boolean; mechanism: string; reason: string }>;
  /** Each node's current cap in cores (null: uncapped), as the launcher's status reads it from its cgroup. */
  caps(nodes: DbNode[]): Promise<Record<string, number | null>>;
  /** The CFS counters of the nodes' cgroups: the share of periods in which each was throttled (null: unknown). */
  throttled(nodes: DbNode[]): Promise<Record<string, { periods: number; throttled: number } | null>>;
}

interface StackModule {
  nodes: { name: string; role: string; port: number }[];
  stopReplicaSql(name: string): Promise<unknown>;
  startReplicaSql(name: string): Promise<unknown>;
  killNode(name: string): Promise<unknown>;
  startNode(name: string): Promise<unknown>;
  setCpuCap(cpu: number | null | 'off', names: string[]): Promise<{ applied: boolean; mechanism: string; reason: string }>;
  throttleStats(names: string[]): Record<string, { periods: number; throttled: number } | null>;
  status(): Promise<{ name: string; cap: number | null }[]>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export class NativeStackControl implements StackControl {
  private mod: Promise<StackModule> | null = null;

  private load(): Promise<StackModule> {
    return (this.mod ??= import(pathToFileURL(join(repoRoot(), 'docker', 'local', 'stack.mjs')).href) as Promise<StackModule>);
  }

  /** The launcher's name of the node, or 409 when the node is not one of the native stack's. */
  async stackName(node: DbNode, roles: string[] = ['replica']): Promise<string> {
    const stack = await this.load();
    const n = stack.nodes.find((s) => roles.includes(s.role) && s.port === node.url.port);
    if (!n || !LOOPBACK.has(node.url.host)) {
      throw ApiError.conflict(`${node.name} (${node.url.host}:${node.url.port}) is not a ${roles.join('/')} node of the native stack on loopback: the console only touches the project's own nodes`);
    }
    return n.name;
  }

  private async dbNames(nodes: DbNode[]): Promise<string[]> {
    return Promise.all(nodes.map((n) => this.stackName(n, ['primary', 'replica', 'shard'])));
  }

  async setCpuCap(nodes: DbNode[], cpu: number | null) {
    return (await this.load()).setCpuCap(cpu ?? 'off', await this.dbNames(nodes));
  }

  async caps(nodes: DbNode[]) {
    const names = await this.dbNames(nodes);
    const status = await (await this.load()).status();
    return Object.fromEntries(nodes.map((n, i) => [n.name, status.find((s) => s.name === names[i])?.cap ?? null]));
  }

  async throttled(nodes: DbNode[]) {
    const names = await this.dbNames(nodes);
    const stats = (await this.load()).throttleStats(names);
    return Object.fromEntries(nodes.map((n, i) => [n.name, stats[names[i]] ?? null]));
  }

  async stopReplicaSql(node: DbNode): Promise<void> {
    const name = await this.stackName(node);
    await (await this.load()).stopReplicaSql(name);
  }

  async startReplicaSql(node: DbNode): Promise<void> {
    const name = await this.stackName(node);
    await (await this.load()).startReplicaSql(name);
  }

  async killReplica(node: DbNode): Promise<void> {
    const name = await this.stackName(node);
    await (await this.load()).killNode(name);
  }

  async startReplica(node: DbNode): Promise<void> {
    const name = await this.stackName(node);
    await (await this.load()).startNode(name);
  }

  private async redisCacheName(url: string): Promise<string> {
    const u = new URL(url);
    const stack = await this.load();
    const n = stack.nodes.find((s) => s.name === 'redis-cache' && s.port === Number(u.port || 6379));
    if (!n || !LOOPBACK.has(u.hostname)) throw ApiError.conflict(`REDIS_CACHE_URL (${u.hostname}:${u.port}) is not the native stack's redis-cache on loopback: the console only touches the project's own nodes`);
    return n.name;
  }

  async killRedisCache(url: string): Promise<void> {
    await (await this.load()).killNode(await this.redisCacheName(url));
  }

  async startRedisCache(url: string): Promise<void> {
    await (await this.load()).startNode(await this.redisCacheName(url));
  }
}
