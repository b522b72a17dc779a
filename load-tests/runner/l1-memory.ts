/**
 * `node --expose-gc dist/load-tests/runner/l1-memory.js [--entries 10000,50000,100000] [--out file]`
 *
 * What an L1 entry costs in memory, measured: for each size, a fresh process fills an lru-cache exactly as
 * CacheAside does in l1l2 mode (the envelope parsed from L2's JSON, the value's encoded response from
 * `encodeProduct`, the same size accounting) with products shaped like the hot-products benchmark's, forces
 * a GC and reads the growth of resident memory and of the V8 heap. A benchmark's own RSS cannot tell: after a
 * pre-warm the process keeps the pages its garbage used, whatever L1 holds.
 * Writes load-tests/results/l1-memory.json: per size, RSS / heap / external MB and bytes per entry, against the
 * bytes CACHE_L1_MAX_BYTES counts for it.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { repoRoot } from '#libs/core';
import { encodeProduct } from '#libs/cache';
import { baseProvenance, finishProvenance } from './provenance.js';
import { parseArgs } from './bench.js';

const description = 'A popular product of the hot-products benchmark. '.repeat(8);

/** One measurement in this process (run in a child per size, so each starts from the same empty heap). */
function measure(n: number) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  const m0 = process.memoryUsage();
  const l1 = new LRUCache<string, object>({ max: n, maxSize: 2 ** 40, ttl: 600_000, ttlAutopurge: false });
  for (let k = 0; k < n; k++) {
    const id = String(1_000_000_001 + k);
    // As it arrives from L2 (CacheAside's envelope: value, logical expiry, load time) and is parsed.
    const raw = JSON.stringify({
      v: { id, categoryId: 7, categoryCode: 'bench-hot', name: `Hot product ${k}`, priceCents: 1000 + (k % 9000), stock: 100, attributes: { color: ['red', 'blue', 'green'][k % 3], sizeMm: 100 + (k % 50), description }, version: 1, updatedAt: '2026-12-05T18:00:00.000Z' },
      e: Date.now() + 300_000,
      d: 1.5,
    });
    const env = JSON.parse(raw);
    const entry = { ...env, b: encodeProduct(env.v) };
    const key = `bench-hot-1796500000000-l1l2-c:product:${id}`;
    l1.set(key, entry, { size: raw.length + key.length + entry.b.body.length });
  }
  gc();
  const m1 = process.memoryUsage();
  const mb = (x: number) => Math.round((x / 2 ** 20) * 10) / 10;
  return {
    entries: l1.size,
    rss_mb: mb(m1.rss - m0.rss),
    heap_mb: mb(m1.heapUsed - m0.heapUsed),
    external_mb: mb(m1.external - m0.external),
    rss_bytes_per_entry: Math.round((m1.rss - m0.rss) / n),
    counted_bytes_per_entry: Math.round(l1.calculatedSize / n),
  };
}

if (process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(measure(Number(process.argv[3]))));
} else {
  const { opts } = parseArgs(['l1-memory', ...process.argv.slice(2)]);
  const root = repoRoot();
  const sizes = (opts.entries ?? '10000,50000,100000').split(',').map(Number);
  const prov = baseProvenance(root);
  prov.command = `node --expose-gc dist/load-tests/runner/l1-memory.js ${process.argv.slice(2).join(' ')}`.trim();
  const rows = sizes.map((n) => {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', String(n)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`l1-memory child for ${n} entries failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  });
  const out = { scenario: 'l1-memory', description: 'Memory of L1 entries shaped like the hot-products benchmark (lru-cache + encodeProduct), per L1 size', startedAt: prov.date, provenance: finishProvenance(prov), rows };
  const file = resolve(root, opts.out ?? 'load-tests/results/l1-memory.json');
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.table(rows);
  console.log(`written ${file}`);
}
