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
 * Every block ends with a source line naming the file and its provenance (source=off leaves it out).
 * `--check` writes nothing and exits 1 when a block differs from what the results give (npm test runs the same
 * check through tools/test/docs-results.spec.ts).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
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
  const lines = ['| ratio | value |', '|---|---:|'];
  for (const k of names) {
    if (r.ratios?.[k] !== undefined) lines.push(`| ${k} | ${r.ratios[k]} |`);
    else if (r.ratiosOmitted?.[k]) lines.push(`| ${k} | omitted, ${r.ratiosOmitted[k]} |`);
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

/** The generated markdown for one block. */
export function renderBlock(name: string, kind: string, options: Record<string, string>, load: Load, docDir: string, root: string): string {
  const r = load(name);
  const body = kind === 'modes' ? modesTable(name, r, options) : kind === 'ratios' ? ratiosTable(name, r, options) : kind === 'table' ? customTable(name, r, options) : kind === 'regions' ? regionsTable(name, r) : null;
  if (body == null) throw new Error(`unknown results block kind '${kind}' (modes, ratios, table, regions)`);
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
  if (!stale.length) console.log('docs:results: every results block matches load-tests/results/');
  process.exit(check && stale.length ? 1 : 0);
}
