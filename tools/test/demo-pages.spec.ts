import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { repoRoot } from '#libs/core';
import { loadScenario } from '../../load-tests/runner/scenarios.js';

// Each measured docs page opens with `npm run demo -- <page>` (scripts/demo.mjs): the command must name a demo
// that exists, runs that same page, and whose scenarios carry a demo preset.
const root = repoRoot();
const load = async (file: string) => import(pathToFileURL(join(root, file)).href);
type Page = { doc: string; runs: Array<{ bench?: string; lab?: string; headline?: unknown }> };

describe('npm run demo', () => {
  it('every docs/q*.md page opens with `npm run demo -- <page>` naming the demo that runs that page', async () => {
    const { PAGES } = (await load('scripts/demo.mjs')) as { PAGES: Record<string, Page> };
    const docs = readdirSync(join(root, 'docs')).filter((f) => /^q\w*-.*\.md$/.test(f));
    expect(docs.length).toBeGreaterThan(0);
    for (const f of docs) {
      const lines = readFileSync(join(root, 'docs', f), 'utf8').split('\n');
      // The first line after the title that holds anything is the demo command.
      const first = lines.slice(1).find((l) => l.trim() !== '') ?? '';
      const page = /`npm run demo -- ([\w-]+)`/.exec(first)?.[1];
      expect({ doc: f, page, runsThisDoc: page ? PAGES[page]?.doc : undefined }).toEqual({ doc: f, page: expect.any(String), runsThisDoc: `docs/${f}` });
    }
    // …and every demo is announced by the page it runs.
    for (const [page, p] of Object.entries(PAGES)) expect({ page, opens: readFileSync(join(root, p.doc), 'utf8').includes(`\`npm run demo -- ${page}\``) }).toEqual({ page, opens: true });
  });

  it('every scenario a demo runs exports a demo preset with options and a headline, and demo results are gitignored', async () => {
    const { PAGES, OUT_DIR } = (await load('scripts/demo.mjs')) as { PAGES: Record<string, Page>; OUT_DIR: string };
    for (const p of Object.values(PAGES)) {
      for (const run of p.runs) {
        if (run.lab) {
          expect(typeof run.headline).toBe('function');
          continue;
        }
        const { demo } = await loadScenario(run.bench!);
        expect({ scenario: run.bench, opts: typeof demo?.opts, headline: typeof demo?.headline }).toEqual({ scenario: run.bench, opts: 'object', headline: 'function' });
        // The preset never names an output file: demo.mjs sends every result to OUT_DIR, never over a documented one.
        expect({ scenario: run.bench, out: demo.opts.out }).toEqual({ scenario: run.bench, out: undefined });
      }
    }
    expect(readFileSync(join(root, '.gitignore'), 'utf8').split('\n')).toContain(`${OUT_DIR}/`);
  });
});
