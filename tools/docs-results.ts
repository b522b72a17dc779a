/**
 * `npm run docs:results [-- --check]`: renders every measured table in docs/*.md and README.md from the result
 * files under load-tests/results/, so a number in the docs is always the number in the file it cites.
 *
 * A block is a pair of HTML comments around generated markdown:
 *
 *   <!-- results:<result file without .json>:<kind>[ key=value …] -->
 *   (generated: never edit by hand)
 *   <!-- /results -->
 *
 * kinds:
 *   modes     the modes table (req/s, p50, p99, errors, the scenario's extra numbers; the cap each mode ran under
 *             and its capacity-bound verdict when the file records them). Options: modes=a,b  cols=rps,p99_ms,…
 *   ratios    the ratios (and the ratios the runner omitted, with the reason). Option: only=a,b
 *   table     one of a custom run's pre-rendered tables: index=N
 *   regions   the multi-region lab's per-setup, per-region table
 *   profile   a CPU profile's cost centres (load-tests/runner/profile.ts): ms and share of the busy time, with the load
 *             it was taken under
 *   chart     a curve drawn from the file: chart=<name> (see CHARTS). The block holds the image link; the SVG itself
 *             is rendered to docs/charts/<file>-<name>.svg (Vega-Lite compiled to Vega, rendered headless to SVG).
 * Every block ends with a source line naming the file and its provenance (source=off leaves it out).
 * `--check` writes nothing and exits 1 when a block or a chart differs from what the results give (npm test runs
 * the same check through tools/test/docs-results.spec.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { repoRoot } from '#libs/core';

export const BLOCK = /<!-- results:([\w.-]+):([\w-]+)((?: [\w.-]+=\S+)*) -->\n[\s\S]*?<!-- \/results -->/g;

type Result = Record<string, any>;
type Load = (name: string) => Result;

// Column headings; a scenario may rename a column (attribute-filter's requests are queries).
const LABELS: Record<string, Record<string, string>> = {
  '*': {
    rps: 'req/s',
    p50_ms: 'p50 ms',
    p99_ms: 'p99 ms',
    errors: 'errors',
    db_selects_per_1k: 'DB SELECTs / 1k req',
    db_selects: 'DB SELECTs',
    l1_hit_pct: 'L1 hit %',
    l2_hit_pct: 'L2 hit %',
    redis_bypasses: 'Redis bypasses',
    primary_selects_per_s: 'primary SELECT/s',
    loadavg_1m: 'load 1m',
    other_benches: 'other bench runs',
    primary_throttled_pct: 'primary throttled %',
    l1_resyncs: 'L1 resyncs',
    p99_all_ms: 'p99 ms (all, split)',
    p99_l1_ms: 'p99 ms of L1 hits',
    p99_l2_ms: 'p99 ms of L2 hits',
    p99_db_ms: 'p99 ms of DB loads',
    rss_mb: 'API RSS MB',
    load_1m_start: 'load 1m (start)',
    load_1m_end: 'load 1m (end)',
    api_cpu_us_per_req: 'API CPU µs / req',
  },
  'attribute-filter': { rps: 'queries/s', rows_examined: 'rows examined / query', storage_mb: 'storage for all attributes, MB', filter_index_mb: 'index used by the filter, MB' },
};
const label = (scenario: string, col: string) => LABELS[scenario]?.[col] ?? LABELS['*'][col] ?? col;
const cell = (v: unknown) => (v === undefined || v === null ? '–' : String(v));

function parseOptions(raw: string): Record<string, string> {
  return Object.fromEntries(
    raw
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

function modesTable(name: string, r: Result, o: Record<string, string>): string {
  const scenario = r.scenario ?? name;
  const all = Object.keys(r.modes ?? {});
  const modes = o.modes ? o.modes.split(',') : all;
  for (const m of modes) if (!r.modes?.[m]) throw new Error(`${name}.json has no mode '${m}' (has: ${all.join(', ')})`);
  const extras = [...new Set(modes.flatMap((m) => Object.keys(r.modes[m].extra ?? {})))];
  const cols = o.cols ? o.cols.split(',') : ['rps', 'p50_ms', 'p99_ms', 'errors', ...extras];
  const caps = r.provenance?.caps?.modes ?? {};
  const withCap = modes.some((m) => caps[m]?.requested != null);
  const withBound = modes.some((m) => r.modes[m].capacityBound !== undefined);
  const head = ['mode', ...cols.map((c) => label(scenario, c)), ...(withCap ? ['db cap'] : []), ...(withBound ? ['capacity-bound'] : [])];
  const lines = [`| ${head.join(' | ')} |`, `|---|${cols.map(() => '---:|').join('')}${withCap ? '---|' : ''}${withBound ? '---|' : ''}`];
  for (const m of modes) {
    const row = r.modes[m];
    const cells = [m, ...cols.map((c) => cell(c in row ? row[c] : row.extra?.[c]))];
    if (withCap) {
      const c = caps[m];
      cells.push(!c || c.requested == null ? 'none' : c.applied ? `${c.requested} CPU (cgroup ${c.mechanism})` : `${c.requested} CPU requested, **NOT applied**`);
    }
    if (withBound) cells.push(row.capacityBound === undefined ? '–' : row.capacityBound ? 'yes' : `**no**: ${row.boundReason}`);
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function ratiosTable(name: string, r: Result, o: Record<string, string>): string {
  const names = o.only ? o.only.split(',') : [...Object.keys(r.ratios ?? {}), ...Object.keys(r.ratiosOmitted ?? {})];
  // A file with goals (bench Scenario.goals) gets a third column: the target and whether this run met it.
  const goal = (k: string) => {
    const g = r.goals?.[k];
    return g ? ` ${g.op} ${g.target}: ${g.met === null ? 'not measured' : g.met ? 'met' : '**not met**'} |` : ' – |';
  };
  const lines = r.goals ? ['| ratio | value | goal |', '|---|---:|---|'] : ['| ratio | value |', '|---|---:|'];
  for (const k of names) {
    if (r.ratios?.[k] !== undefined) lines.push(`| ${k} | ${r.ratios[k]} |${r.goals ? goal(k) : ''}`);
    else if (r.ratiosOmitted?.[k]) lines.push(`| ${k} | omitted, ${r.ratiosOmitted[k]} |${r.goals ? goal(k) : ''}`);
    else throw new Error(`${name}.json has no ratio '${k}'`);
  }
  return lines.join('\n');
}

function customTable(name: string, r: Result, o: Record<string, string>): string {
  const t = r.tables?.[Number(o.index)];
  if (typeof t !== 'string') throw new Error(`${name}.json has no tables[${o.index}]`);
  // A pre-rendered table may open with a heading: as bold text it cannot break the page's outline.
  return t
    .trim()
    .split('\n')
    .map((l) => l.replace(/^#{1,6} (.*)$/, '**$1**\n'))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

function regionsTable(name: string, r: Result): string {
  if (!r.setups) throw new Error(`${name}.json is not a multi-region lab result`);
  const lines = [
    '| setup | region | write p50 | write p99 | writes/s | stale p50 | stale p99 | hot-row commit p50 | hot p99 | hot aborts / attempts | C cut off: writes ok/failed | notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const [setup, s] of Object.entries<any>(r.setups)) {
    if (s.error) {
      lines.push(`| ${setup} | – | ${Array(9).fill('–').join(' | ')} | failed: ${s.error} |`);
      continue;
    }
    for (const reg of Object.keys(s.writes)) {
      const w = s.writes[reg];
      const h = s.hotRow.perRegion[reg];
      const c = s.cut.perRegion[reg];
      const notes: string[] = [];
      if (w.writeHomeUsers) notes.push(`home p50 ${w.writeHomeUsers.p50} / traveller p50 ${w.writeTravellers.p50}`);
      if (c.readDuringCut) notes.push(`read during the cut: ${c.readDuringCut}`);
      if (Object.keys(c.errors ?? {}).length) notes.push(`errors: ${Object.entries(c.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
      if (c.firstOkAfterMs != null && c.firstOkAfterMs > 1000) notes.push(`writes stalled ${(c.firstOkAfterMs / 1000).toFixed(1)} s`);
      lines.push(
        `| ${reg === 'A' ? setup : ''} | ${reg} | ${cell(w.write.p50)} | ${cell(w.write.p99)} | ${cell(w.writesPerSec)} | ${cell(w.staleness?.p50)} | ${cell(w.staleness?.p99)} | ${cell(h.commit.p50)} | ${cell(h.commit.p99)} | ${h.aborts}/${h.commits + h.aborts} | ${c.writesOk}/${c.writesFailed} | ${notes.join('; ')} |`,
      );
    }
  }
  return lines.join('\n');
}

// ---- charts: curves drawn from the result files, never by hand

type Point = Record<string, string | number>;
interface ChartDef {
  title: string;
  /** The points of the curve, from the result file; throws when the file does not hold them. */
  points: (r: Result, name: string) => Point[];
  /** The Vega-Lite spec around the points (data.values is filled in). */
  spec: (points: Point[]) => Record<string, unknown>;
}

const modeNumber = (r: Result, name: string, mode: string, col = 'rps'): number => {
  const m = r.modes?.[mode];
  const v = m?.[col] ?? m?.extra?.[col];
  if (typeof v !== 'number') throw new Error(`${name}.json has no ${col} for mode '${mode}'`);
  return v;
};
const lineChart = (x: { field: string; title: string; type?: 'quantitative' | 'ordinal'; log?: boolean }, y: { field: string; title: string; log?: boolean }, series?: { field: string; title: string }) => ({
  width: 420,
  height: 240,
  mark: { type: 'line' as const, point: true },
  encoding: {
    x: { field: x.field, type: x.type ?? ('quantitative' as const), title: x.title, ...(x.log ? { scale: { type: 'log' as const } } : {}), ...(x.type === 'ordinal' ? { axis: { labelAngle: 0 } } : {}) },
    y: { field: y.field, type: 'quantitative' as const, title: y.title, ...(y.log ? { scale: { type: 'log' as const } } : {}) },
    ...(series ? { color: { field: series.field, type: 'nominal' as const, title: series.title, legend: { orient: 'bottom' as const, direction: 'vertical' as const, labelLimit: 480 } } } : {}),
  },
});

/** `<result file>:<chart name>` → how to draw it. */
export const CHARTS: Record<string, ChartDef> = {
  'orders-growth:retention': {
    title: 'Retention: removing the oldest month, DELETE vs DROP PARTITION',
    points: (r, name) => {
      const sizes = Object.entries<any>(r.details?.sizes ?? {});
      if (!sizes.length) throw new Error(`${name}.json has no details.sizes (run it with --sizes)`);
      return sizes.flatMap(([, d]) => [
        { rows: d.retention.monthRows, method: 'DELETE WHERE created_at < … (unpartitioned table)', ms: d.retention.del.ms },
        { rows: d.retention.monthRows, method: 'ALTER TABLE … DROP PARTITION (partitioned table)', ms: d.retention.drop.ms },
        { rows: d.retention.monthRows, method: 'EXCHANGE PARTITION + DROP', ms: d.retention.exch.ms },
      ]);
    },
    spec: () => lineChart({ field: 'rows', title: 'rows in the month removed' }, { field: 'ms', title: 'ms on the primary (log scale)', log: true }, { field: 'method', title: 'method' }),
  },
  'orders-growth:month-scan': {
    title: 'A month-wide scan: rows examined vs table size',
    points: (r, name) => {
      const sizes = Object.entries<any>(r.details?.sizes ?? {});
      if (!sizes.length) throw new Error(`${name}.json has no details.sizes (run it with --sizes)`);
      return sizes.flatMap(([n, d]) => [
        { rows: Number(n), table: 'unpartitioned', examined: d.flatScan.rows },
        { rows: Number(n), table: 'partitioned by month', examined: d.partScan.rows },
      ]);
    },
    spec: () => lineChart({ field: 'rows', title: 'rows in the table' }, { field: 'examined', title: 'rows examined by the scan' }, { field: 'table', title: 'table' }),
  },
  'replica-reads:throughput': {
    title: 'Read throughput vs read replicas (every node capped alike)',
    points: (r, name) =>
      ([['primary-only', 0], ['one-replica', 1], ['two-replicas', 2]] as const).map(([mode, replicas]) => ({ replicas, rps: modeNumber(r, name, mode) })),
    spec: () => lineChart({ field: 'replicas', title: 'read replicas (0 = reads on the primary)', type: 'ordinal' }, { field: 'rps', title: 'reads/s' }),
  },
  'hot-products-prewarm-sweep:gain': {
    title: 'Cache gain (L1+L2 over cache off, database capped) vs pre-warm size',
    points: (r, name) => {
      const off = modeNumber(r, name, 'off');
      const modes = Object.keys(r.modes ?? {}).filter((m) => /^l1l2_prewarm\d+$/.test(m));
      if (!modes.length) throw new Error(`${name}.json has no l1l2_prewarm<N> modes (run hot-products with BENCH_HOT_PREWARM=0,20000,50000)`);
      return modes.map((m) => {
        const hit = Math.round((modeNumber(r, name, m, 'l1_hit_pct') + modeNumber(r, name, m, 'l2_hit_pct')) * 10) / 10;
        return { prewarm: Number(m.slice('l1l2_prewarm'.length)), gain: Math.round((modeNumber(r, name, m) / off) * 100) / 100, label: `hit ${hit} %` };
      });
    },
    spec: () => {
      const base = lineChart({ field: 'prewarm', title: 'most popular products read once before the run' }, { field: 'gain', title: 'req/s, L1+L2 ÷ cache off' });
      return { width: base.width, height: base.height, encoding: base.encoding, layer: [{ mark: base.mark }, { mark: { type: 'text', dy: -10 }, encoding: { text: { field: 'label' } } }] };
    },
  },
  'shorts-workers:jobs': {
    title: 'Shorts jobs per hour vs worker processes (one 2-core box)',
    points: (r, name) => {
      const pts = Object.entries<number>(r.ratios ?? {}).flatMap(([k, v]) => {
        const m = /^jobs_per_hour_(\d+)_workers?$/.exec(k);
        return m ? [{ workers: Number(m[1]), jobsPerHour: v }] : [];
      });
      if (!pts.length) throw new Error(`${name}.json has no jobs_per_hour_<N>_worker(s) ratios (run shorts with --parts jobs --workers 1,2,3)`);
      return pts.sort((a, b) => a.workers - b.workers);
    },
    spec: () => lineChart({ field: 'workers', title: 'shorts-worker processes', type: 'ordinal' }, { field: 'jobsPerHour', title: 'jobs / hour' }),
  },
  'multi-region-delays:galera': {
    title: 'Galera write commit latency vs one-way WAN delay',
    points: (r, name) => {
      const pts = Object.entries<any>(r.delays ?? {}).flatMap(([d, run]) => {
        const g = run.setups?.galera;
        if (!g || g.error) return [];
        return Object.entries<any>(g.writes).flatMap(([reg, w]) => [
          { delay: Number(d), region: reg, percentile: 'p50', ms: w.write.p50 },
          { delay: Number(d), region: reg, percentile: 'p99', ms: w.write.p99 },
        ]);
      });
      if (!pts.length) throw new Error(`${name}.json has no galera run under delays.<ms> (run the lab with --delays 10,40,80 --setups galera)`);
      return pts;
    },
    spec: () => {
      const c = lineChart({ field: 'delay', title: 'one-way delay between regions, ms' }, { field: 'ms', title: 'write commit, ms' }, { field: 'region', title: 'region' });
      return { ...c, encoding: { ...c.encoding, strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile', legend: { orient: 'bottom' } } } };
    },
  },
};

function chartDef(name: string, o: Record<string, string>): ChartDef {
  const def = CHARTS[`${name}:${o.chart}`];
  if (!def) throw new Error(`no chart '${o.chart}' for ${name}.json (charts: ${Object.keys(CHARTS).join(', ')})`);
  return def;
}
const chartFile = (root: string, name: string, chart: string) => join(root, 'docs/charts', `${name}-${chart}.svg`);

function chartLink(name: string, r: Result, o: Record<string, string>, docDir: string, root: string): string {
  const def = chartDef(name, o);
  def.points(r, name); // a block whose file lacks the curve fails here, with the file named
  return `![${def.title}](${relative(docDir, chartFile(root, name, o.chart))})`;
}

/** The SVG of one chart: Vega-Lite → Vega → headless SVG. Same points, same bytes (no canvas, no clock, no random). */
export async function renderChart(name: string, chart: string, load: Load): Promise<string> {
  const def = chartDef(name, { chart });
  const points = def.points(load(name), name);
  const spec = { ...def.spec(points), title: def.title, data: { values: points }, config: { font: 'sans-serif', background: 'white' } } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return (await view.toSVG()) + '\n';
  } finally {
    view.finalize();
  }
}

/** Every chart the docs' blocks ask for: file → the SVG the results give. */
export async function renderCharts(root: string, load: Load = resultLoader(root)): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of documents(root)) {
    for (const m of readFileSync(file, 'utf8').matchAll(BLOCK)) {
      if (m[2] !== 'chart') continue;
      const chart = parseOptions(m[3]).chart;
      out.set(relative(root, chartFile(root, m[1], chart)), await renderChart(m[1], chart, load));
    }
  }
  return out;
}

/** Charts whose committed SVG differs from what the results give, is missing, or is no longer asked for by any block. */
export async function staleCharts(root: string): Promise<Array<{ file: string; svg: string | null }>> {
  const want = await renderCharts(root);
  const dir = join(root, 'docs/charts');
  const have = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.svg')).map((f) => join('docs/charts', f)) : [];
  const stale: Array<{ file: string; svg: string | null }> = [];
  for (const [file, svg] of want) if (!existsSync(join(root, file)) || readFileSync(join(root, file), 'utf8') !== svg) stale.push({ file, svg });
  for (const file of have) if (!want.has(file)) stale.push({ file, svg: null });
  return stale;
}

/** One line: the file (linked relative to the doc) and what its provenance says, or that it has none. */
function sourceLine(name: string, r: Result, docDir: string, root: string): string {
  const rel = relative(docDir, join(root, 'load-tests/results', `${name}.json`));
  const p = r.provenance;
  const link = `[load-tests/results/${name}.json](${rel})`;
  if (!p) {
    const when = r.startedAt ?? r.generatedAt ?? r.measuredAt;
    return `_Source: ${link}${when ? `, run of ${when.slice(0, 16).replace('T', ' ')} UTC` : ''}; recorded before results carried provenance (commit, load average and whether CPU caps were applied are not recorded)._`;
  }
  const load = p.loadavg ? `load ${p.loadavg.before?.[0]} → ${p.loadavg.after?.[0] ?? '?'}` : '';
  const caps = p.caps?.mechanism === 'none' ? `caps **NOT applied** (${p.caps.reason})` : p.caps?.mechanism ? `caps: cgroup ${p.caps.mechanism}` : 'no caps';
  const commit = p.commit ? `commit ${p.commit.slice(0, 7)}${p.dirty ? ' (dirty)' : ''}` : 'commit unknown';
  return `_Source: ${link}, run of ${p.date.slice(0, 16).replace('T', ' ')} UTC, ${commit}, ${p.machine.cores} × ${p.machine.cpuModel}, Node ${p.node}, ${p.database ?? 'database ?'}, ${load}, ${caps}: \`${p.command}\`._`;
}

function profileTable(name: string, r: Result): string {
  if (!r.centres) throw new Error(`${name}.json is not a profile summary (no centres)`);
  const l = r.load;
  const lines = [
    `${l.rps} req/s under the profiler (${l.connections} connections, ${l.durationS} s profiled after ${l.warmupS} s warm-up, ${l.errors + l.non2xx} errors/non-2xx${l.extra ? `; ${Object.entries(l.extra).map(([k, v]) => `${label(name, k)} ${v}`).join(', ')}` : ''}); ${r.busyMs} ms busy of a ${r.windowMs} ms window:`,
    '',
    '| cost centre | ms | % of busy |',
    '|---|---:|---:|',
  ];
  for (const [c, v] of Object.entries<any>(r.centres)) lines.push(`| ${c} | ${v.ms} | ${v.pct_of_busy ?? '– (idle)'} |`);
  return lines.join('\n');
}

/** The generated markdown for one block. */
export function renderBlock(name: string, kind: string, options: Record<string, string>, load: Load, docDir: string, root: string): string {
  const r = load(name);
  const body =
    kind === 'modes' ? modesTable(name, r, options)
    : kind === 'ratios' ? ratiosTable(name, r, options)
    : kind === 'table' ? customTable(name, r, options)
    : kind === 'regions' ? regionsTable(name, r)
    : kind === 'chart' ? chartLink(name, r, options, docDir, root)
    : kind === 'profile' ? profileTable(name, r)
    : null;
  if (body == null) throw new Error(`unknown results block kind '${kind}' (modes, ratios, table, regions, chart, profile)`);
  return options.source === 'off' ? body : `${body}\n\n${sourceLine(name, r, docDir, root)}`;
}

/** The document with every block re-rendered. */
export function renderDoc(text: string, load: Load, docDir: string, root: string): string {
  return text.replace(BLOCK, (_m, name: string, kind: string, opts: string) => {
    const open = `<!-- results:${name}:${kind}${opts} -->`;
    return `${open}\n\n${renderBlock(name, kind, parseOptions(opts), load, docDir, root)}\n\n<!-- /results -->`;
  });
}

/** docs/*.md (security and ADRs hold no measurements) and README.md. */
export function documents(root: string): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md') && f !== 'security.md')
    .map((f) => join(root, 'docs', f));
  return [...docs, join(root, 'README.md')];
}

export function resultLoader(root: string): Load {
  const cache = new Map<string, Result>();
  return (name) => {
    if (!cache.has(name)) cache.set(name, JSON.parse(readFileSync(join(root, 'load-tests/results', `${name}.json`), 'utf8')));
    return cache.get(name)!;
  };
}

/** Every document whose blocks differ from what the results give: { file, blocks: names of the differing blocks }. */
export function staleDocs(root: string): Array<{ file: string; blocks: string[]; rendered: string }> {
  const load = resultLoader(root);
  const out: Array<{ file: string; blocks: string[]; rendered: string }> = [];
  for (const file of documents(root)) {
    const text = readFileSync(file, 'utf8');
    const rendered = renderDoc(text, load, dirname(file), root);
    if (rendered === text) continue;
    const have = text.match(BLOCK) ?? [];
    const want = rendered.match(BLOCK) ?? [];
    out.push({ file: relative(root, file), blocks: want.filter((b, i) => b !== have[i]).map((b) => b.split('\n')[0]), rendered });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = repoRoot();
  const check = process.argv.includes('--check');
  const stale = staleDocs(root);
  for (const s of stale) {
    console.log(`${check ? 'differs' : 'rendered'}: ${s.file}\n  ${s.blocks.join('\n  ')}`);
    if (!check) writeFileSync(join(root, s.file), s.rendered);
  }
  const charts = await staleCharts(root);
  for (const c of charts) {
    console.log(`${check ? 'differs' : c.svg == null ? 'removed (no block asks for it)' : 'rendered'}: ${c.file}`);
    if (check) continue;
    if (c.svg == null) unlinkSync(join(root, c.file));
    else {
      mkdirSync(dirname(join(root, c.file)), { recursive: true });
      writeFileSync(join(root, c.file), c.svg);
    }
  }
  if (!stale.length && !charts.length) console.log('docs:results: every results block and chart matches load-tests/results/');
  process.exit(check && (stale.length || charts.length) ? 1 : 0);
}
