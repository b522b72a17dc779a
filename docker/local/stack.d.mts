// The native stack launcher's public API (docker/local/stack.mjs), typed once for every TypeScript caller:
// tests (libs/testing/src/native-stack.ts), the benchmark runner and the load-test scenarios. Type-only imports
// (`import type * as Launcher from …/stack.mjs`): the launcher itself is always loaded at run time from the
// repository (never a copy in dist/), because it finds STACK_DIR and the repository relative to its own file.

export interface StackNode {
  name: string;
  role: string;
  kind: string;
  port: number;
  pid: number | null;
  [k: string]: unknown;
}
export interface StatusRow {
  name: string;
  role: string;
  kind: string;
  port: number;
  pid: number | null;
  state: 'up' | 'down' | 'unresponsive' | 'replication-down';
  cap: number | null;
  detail: string;
  replication?: { io: string; sql: string; secondsBehind: number | null; gtidIoPos: string; lastIoError: string; lastSqlError: string; sourcePort: number | null } | null;
}
export type CapMechanism = 'v1' | 'v2' | 'none';
export interface CapResult {
  applied: boolean;
  mechanism: CapMechanism;
  dir: string | null;
  cpu: number | null;
  nodes: string[];
  periodUs: number;
  reason: string;
}
export interface Throttle {
  periods: number;
  throttled: number;
}
export interface SentinelOpts {
  dir?: string;
  /** Primaries of the group's own (ports), so a failure test never kills a shared node. */
  ownPrimaries?: { cache: number; queue: number };
  quiet?: boolean;
  log?: (line: string) => void;
}
export interface SentinelTopology {
  dir: string;
  groups: Array<{ role: 'cache' | 'queue'; masterName: string; primaryPort: number; replica: StackNode }>;
  nodes: StackNode[];
  downAfter: number;
  failoverTimeout: number;
}
export interface Edge {
  pid: number;
  port: number;
  dir: string;
  url: string;
  stop: () => Promise<void>;
}
export interface PrimaryChange {
  primary: string;
  previous: string;
  gtid: string;
  totalMs: number;
  repointed: Record<string, string>;
  readOnlyMs?: number;
  positions?: Record<string, string>;
}
type UpOpts = { quiet?: boolean; log?: (line: string) => void; edge?: boolean };

export const nodes: StackNode[];
export const addedShards: StackNode[];
export const APP_ACCOUNTS: Record<'app' | 'ddl' | 'monitor', { user: string; password: string }>;
export function up(opts?: UpOpts): Promise<StatusRow[]>;
export function status(): Promise<StatusRow[]>;
export function down(): Promise<void>;
export function reset(): Promise<void>;
export function killNode(name: string): Promise<number | null>;
export function startNode(name: string): Promise<StatusRow | undefined>;
export function printTable(rows: StatusRow[]): void;
/** Start the optional third order shard (shard-2, :3312); idempotent. */
export function addShard(opts?: UpOpts): Promise<StatusRow>;

// replication (catalog)
export function stopReplicaSql(name: string): Promise<void>;
export function startReplicaSql(name: string): Promise<void>;
export function catalogRoles(): { primary: string; previous?: string; how?: string; gtid?: string; at?: string };
export function promote(name: string, opts?: { timeoutS?: number }): Promise<PrimaryChange>;
export function failover(opts?: { timeoutS?: number }): Promise<PrimaryChange>;

// CPU caps
export const CAP_PERIOD_US: number;
export function setCpuCap(cpu: number | string | null, nodes?: string[]): Promise<CapResult>;
export function capMechanism(): { mechanism: CapMechanism; dir: string | null; reason: string };
export function detectCgroup(fsRoot?: string, name?: string): { mechanism: CapMechanism; base: string | null; dir: string | null; reason: string };
export function throttleStats(names: string[]): Record<string, Throttle | null>;
export function cfsQuota(cpu: number | null, period?: number): { quotaUs: number; periodUs: number };
export function formatCpuMax(cpu: number | null): string;
export function parseCpuMax(text: string): number | null;
export function cpuCgroupPath(procCgroupText: string, mechanism: 'v1' | 'v2'): string | null;

// Redis Sentinel
export const SENTINEL_MASTERS: { cache: string; queue: string };
export function sentinelTopology(opts?: SentinelOpts): SentinelTopology;
export function upSentinel(opts?: SentinelOpts): Promise<StatusRow[]>;
export function sentinelStatus(opts?: SentinelOpts): Promise<StatusRow[]>;
export function sentinelMaster(masterName: string, opts?: SentinelOpts): Promise<number | null>;
export function killSentinelNode(name: string, opts?: SentinelOpts): Promise<number | null>;
export function downSentinel(opts?: SentinelOpts & { purge?: boolean }): Promise<void>;

// the edge cache
export const edge: { name: 'edge'; port: number; dir: string; backend: string; ttlS: number; graceS: number };
export function edgeSiteVcl(backend: string, ttlS?: number, graceS?: number): string;
export function startEdge(opts: { port: number; backend: string; dir: string; memory?: string; ttlS?: number; graceS?: number }): Promise<Edge>;
export function stopEdge(dir?: string): Promise<void>;
