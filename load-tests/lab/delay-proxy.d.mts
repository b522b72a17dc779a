// Types for delay-proxy.mjs (plain ESM so the lab runs without a build).
export interface DelayProxyOptions {
  name?: string;
  listenPort?: number;
  listenPath?: string;
  targetPort?: number;
  targetPath?: string;
  delayMs: number;
  maxQueuedBytes?: number;
}
export interface LinkStats { connections: number; bytes: number; maxEarlyMs: number }
export class DelayProxy {
  constructor(o: DelayProxyOptions);
  listenPort: number;
  delayMs: number;
  isCut: boolean;
  stats: LinkStats;
  listen(): Promise<DelayProxy>;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}
export class Wan {
  constructor(o?: { delayMs?: number; maxQueuedBytes?: number });
  add(spec: { from: string; to: string; service: string } & Omit<DelayProxyOptions, 'delayMs' | 'name'>): Promise<DelayProxy>;
  endpoint(from: string, to: string, service: string): number;
  isolate(region: string): void;
  healAll(): void;
  setDelay(ms: number): void;
  stats(): Array<{ link: string } & LinkStats>;
  close(): Promise<void>;
}
