import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { repoRoot } from '#libs/core';
import { BLOCK, documents, renderChart, renderDoc, resultLoader, staleCharts, staleDocs } from '../docs-results.js';

// The docs are the project's proof: every measured table in docs/ and README.md is rendered from
// load-tests/results/*.json, and this check fails when a rendered block no longer matches its file.
const root = repoRoot();

describe('docs rendered from results', () => {
  it('every results block in docs/*.md and README.md matches what load-tests/results/ gives (fix: npm run docs:results)', () => {
    const stale = staleDocs(root).map((s) => `${s.file}: ${s.blocks.join(', ')}`);
    expect(stale).toEqual([]);
  });

  it('the measured pages hold results blocks, each naming an existing result file', () => {
    const load = resultLoader(root);
    const pages = ['q1-hot-products', 'q1a-orders-growth', 'q1b-category-attributes', 'q2-shorts-service', 'q3-replication', 'q3a-multi-region', 'architecture'];
    for (const page of pages) {
      const text = readFileSync(join(root, 'docs', `${page}.md`), 'utf8');
      const names = [...text.matchAll(BLOCK)].map((m) => m[1]);
      expect({ page, blocks: names.length > 0 }).toEqual({ page, blocks: true });
      for (const name of names) expect(() => load(name)).not.toThrow();
    }
  });

  it('a number edited by hand inside a block is caught: rendering puts the file\'s number back', () => {
    const file = join(root, 'docs', 'q3-replication.md');
    const text = readFileSync(file, 'utf8');
    const block = text.match(BLOCK)![0];
    const edited = text.replace(block, block.replace(/\| (\d+)/, (_m, d: string) => `| ${Number(d) + 1}`));
    expect(edited).not.toBe(text);
    expect(renderDoc(edited, resultLoader(root), dirname(file), root)).toBe(text);
  });

  it('a block naming a ratio the file does not hold fails to render, with the file and the ratio named', () => {
    const doc = '<!-- results:replica-reads:ratios only=no_such_ratio -->\n<!-- /results -->';
    expect(() => renderDoc(doc, resultLoader(root), join(root, 'docs'), root)).toThrow("replica-reads.json has no ratio 'no_such_ratio'");
  });

  it('a result whose caps were not applied says so in its rendered table', () => {
    const result = {
      scenario: 'x',
      provenance: { date: '2026-01-01T00:00:00Z', commit: 'a'.repeat(40), dirty: false, machine: { cores: 2, cpuModel: 'cpu' }, node: 'v20', database: 'db', loadavg: { before: [1], after: [2] }, caps: { mechanism: 'none', reason: 'no cgroup', modes: { m: { requested: 0.1, applied: false, mechanism: 'none', nodes: [] } } }, command: 'npm run bench -- x --uncapped-ok' },
      modes: { m: { rps: 10, p50_ms: 1, p99_ms: 2, errors: 0, requests: 100 } },
      ratios: {},
    };
    const out = renderDoc('<!-- results:x:modes -->\n<!-- /results -->', () => result, join(root, 'docs'), root);
    expect(out).toContain('| m | 10 | 1 | 2 | 0 | 0.1 CPU requested, **NOT applied** |');
    expect(out).toContain('caps **NOT applied** (no cgroup)');
  });

  it('documents covered: docs/*.md except security.md, and README.md', () => {
    const files = documents(root).map((f) => f.slice(root.length + 1));
    expect(files).toContain('README.md');
    expect(files).toContain('docs/q3-replication.md');
    expect(files).not.toContain('docs/security.md');
  });

  it('every chart SVG under docs/charts is what the results give, and no chart is left without a block (fix: npm run docs:results)', async () => {
    const stale = (await staleCharts(root)).map((c) => c.file);
    expect(stale).toEqual([]);
  });

  it('a chart renders to the same bytes every time (no clock, no random ids), so the check above can compare files', async () => {
    const load = resultLoader(root);
    const a = await renderChart('replica-reads', 'throughput', load);
    const b = await renderChart('replica-reads', 'throughput', load);
    expect(a.startsWith('<svg')).toBe(true);
    expect(b).toBe(a);
  });

  it('a committed SVG edited by hand, or one no block asks for, is caught', async () => {
    // A throw-away copy of the repository's docs and results: the check runs on it, nothing tracked is written.
    const tmp = mkdtempSync(join(tmpdir(), 'docs-results-'));
    try {
      cpSync(join(root, 'load-tests/results'), join(tmp, 'load-tests/results'), { recursive: true });
      mkdirSync(join(tmp, 'docs/charts'), { recursive: true });
      writeFileSync(join(tmp, 'README.md'), '');
      writeFileSync(join(tmp, 'docs/page.md'), '<!-- results:replica-reads:chart chart=throughput source=off -->\n<!-- /results -->\n');
      const good = await renderChart('replica-reads', 'throughput', resultLoader(tmp));
      writeFileSync(join(tmp, 'docs/charts/replica-reads-throughput.svg'), good);
      expect(await staleCharts(tmp)).toEqual([]);
      // An edit of the axis title, which every rendering holds (a data value would change with each re-measurement).
      const edited = good.replace('>reads/s<', '>reads/sec<');
      expect(edited).not.toBe(good);
      writeFileSync(join(tmp, 'docs/charts/replica-reads-throughput.svg'), edited);
      writeFileSync(join(tmp, 'docs/charts/orphan.svg'), good);
      expect((await staleCharts(tmp)).map((c) => [c.file, c.svg == null ? 'unasked' : 'differs'])).toEqual([
        ['docs/charts/replica-reads-throughput.svg', 'differs'],
        ['docs/charts/orphan.svg', 'unasked'],
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a chart block whose file lacks the curve fails to render, naming the file and what to run', () => {
    const doc = '<!-- results:replica-stale:chart chart=throughput -->\n<!-- /results -->';
    expect(() => renderDoc(doc, resultLoader(root), join(root, 'docs'), root)).toThrow("no chart 'throughput' for replica-stale.json");
    const single = '<!-- results:orders-growth:chart chart=retention -->\n<!-- /results -->';
    expect(() => renderDoc(single, () => ({ details: { rows: 1000000 } }), join(root, 'docs'), root)).toThrow('orders-growth.json has no details.sizes (run it with --sizes)');
  });
});
