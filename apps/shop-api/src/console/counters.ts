/**
 * Reads the process's Prometheus registry (the one GET /metrics prints) as numbers: the console's charts
 * and the experiments' before/after deltas come from these same counters, never from a second tally.
 */
import type { Metrics } from '#libs/core';

export interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export async function samples(metrics: Metrics, name: string): Promise<Sample[]> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return [];
  return ((await m.get()).values ?? []) as Sample[];
}

/** Sum of a counter's series whose labels include `where`. */
export async function total(metrics: Metrics, name: string, where: Record<string, string> = {}): Promise<number> {
  return (await samples(metrics, name))
    .filter((s) => Object.entries(where).every(([k, v]) => String(s.labels[k]) === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Sums of a counter by one label. */
export async function byLabel(metrics: Metrics, name: string, label: string, where: Record<string, string> = {}): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await samples(metrics, name)) {
    if (!Object.entries(where).every(([k, v]) => String(s.labels[k]) === v)) continue;
    const key = String(s.labels[label] ?? '');
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** "/products/:id" → "/products": the route family of the charts. */
export function routeFamily(route: string): string {
  const seg = route.split('/').filter(Boolean)[0];
  return seg ? `/${seg}` : '/';
}

/** Cumulative bucket counts of http_request_duration_seconds per route family: { family: { le: count } }. */
export async function latencyBuckets(metrics: Metrics): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const s of await samples(metrics, 'http_request_duration_seconds')) {
    if (s.metricName !== 'http_request_duration_seconds_bucket') continue;
    const family = routeFamily(String(s.labels.route ?? 'unmatched'));
    const le = String(s.labels.le);
    (out[family] ??= {})[le] = (out[family][le] ?? 0) + s.value;
  }
  return out;
}

/**
 * Requests and p99 between two bucket snapshots of one family: the p99 is the upper bound of the first
 * bucket holding 99 % of the requests (what Prometheus' histogram_quantile would interpolate inside).
 */
export function windowStats(prev: Record<string, number> | undefined, now: Record<string, number>): { count: number; p99Ms: number | null } {
  const les = Object.keys(now).sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
  const delta = les.map((le) => [le, now[le] - (prev?.[le] ?? 0)] as const);
  const count = delta.at(-1)?.[1] ?? 0;
  if (count <= 0) return { count: 0, p99Ms: null };
  const hit = delta.find(([, c]) => c >= 0.99 * count)!;
  return { count, p99Ms: hit[0] === '+Inf' ? null : Math.round(Number(hit[0]) * 1000 * 10) / 10 };
}
