// Scenario `attribute-filter`: the same attribute filter three ways on N products (default 1M) across the
// seeded categories (food / laptop / apparel):
//   indexed — JSON document + VIRTUAL generated column + index (what the API runs; AttributePromoter built it)
//   eav     — Magento-style EAV: typed value tables eav_int / eav_decimal / eav_varchar / eav_date with the
//             best index for the filter, (attribute_id, value, product_id), joined back to products
//   scan    — the same JSON document, no index on the attribute: JSON_EXTRACT on every candidate row
// Filter: food with weightG = <random 50..2049>, first page by price (ORDER BY price_cents, id LIMIT 20).
// Reports per mode: queries/s and p50/p99 over --duration with --connections concurrent sessions, rows
// examined per query (Handler_read_* deltas of the session), and the storage the approach needs for ALL
// attributes (JSON text + generated-column indexes, or the EAV tables). Ratio scan_vs_indexed_rows.
// Database-level, Node only (`run`), in its own database mallscale_bench_attrs on the primary, loaded with
// sql_log_bin=0 so the replicas other tests use are not flooded. Idempotent: reuses a loaded database.
const port = (name, dflt) => Number((typeof process !== 'undefined' && process.env[`STACK_PORT_${name}`]) || dflt);

export const EAV_DDL = [
  `CREATE TABLE eav_attributes (id SMALLINT UNSIGNED NOT NULL PRIMARY KEY, category_id INT UNSIGNED NOT NULL, code VARCHAR(64) NOT NULL,
     backend_type ENUM('int','decimal','varchar','date') NOT NULL, UNIQUE KEY uq_eav_attributes (category_id, code)) ENGINE=InnoDB`,
  ...[
    ['eav_int', 'BIGINT'],
    ['eav_decimal', 'DECIMAL(20,6)'],
    ['eav_date', 'DATE'],
    ['eav_varchar', 'VARCHAR(191)'],
  ].map(
    ([t, type]) => `CREATE TABLE ${t} (product_id BIGINT UNSIGNED NOT NULL, attribute_id SMALLINT UNSIGNED NOT NULL, value ${type} NOT NULL,
     PRIMARY KEY (product_id, attribute_id, value), KEY ix_${t}_attribute_value (attribute_id, value, product_id)) ENGINE=InnoDB`,
  ),
];

/**
 * The filter "food with weightG = w, first page by price" three ways: (w) => [sql, params]. Table names are
 * parameters so the console's experiment (apps/shop-api/src/console/experiments/attribute-filter.ts) runs the
 * same statements on its own generated copies.
 */
export function filterQueries({ products, eavInt, column, index, categoryId, attributeId }) {
  const cols = 'p.id, p.name, p.price_cents';
  return {
    indexed: (w) => [`SELECT ${cols} FROM ${products} p WHERE p.category_id = ? AND p.\`${column}\` = ? ORDER BY p.price_cents, p.id LIMIT 20`, [categoryId, w]],
    eav: (w) => [`SELECT ${cols} FROM ${eavInt} v JOIN ${products} p ON p.id = v.product_id WHERE v.attribute_id = ? AND v.value = ? AND p.category_id = ? ORDER BY p.price_cents, p.id LIMIT 20`, [attributeId, w, categoryId]],
    scan: (w) => [`SELECT ${cols} FROM ${products} p IGNORE INDEX (\`${index}\`) WHERE p.category_id = ? AND CAST(JSON_UNQUOTE(JSON_EXTRACT(p.attributes, '$.weightG')) AS SIGNED) = ? ORDER BY p.price_cents, p.id LIMIT 20`, [categoryId, w]],
  };
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export default {
  name: 'attribute-filter',
  description: 'attribute filter on 1M products: JSON + indexed generated column vs EAV vs unindexed JSON scan',
  modes: {},
  request() {
    // k6 side: the API's filter (indexed mode only; EAV and scan have no HTTP route).
    const env = typeof __ENV !== 'undefined' ? __ENV : {};
    return { method: 'GET', path: `/products?category=food&attr.weightG=${env.WEIGHT || 500}&sort=price` };
  },

  async run(ctx, opts) {
    const { join } = await import('node:path');
    const { pathToFileURL } = await import('node:url');
    const mysql = await ctx.load('mysql2/promise');
    const dbLib = await import(pathToFileURL(join(ctx.root, 'dist/libs/db/src/index.js')).href);
    const catalog = await import(pathToFileURL(join(ctx.root, 'dist/libs/attributes/src/index.js')).href);
    // The same seeded generator as `npm run seed`, with a fixed first expiry day so the data never moves.
    const { mulberry32: rng, sampleAttributes } = await import(pathToFileURL(join(ctx.root, 'dist/tools/sample-data.js')).href);
    const attributesFor = (code, r) => sampleAttributes(code, r, Date.UTC(2026, 0, 1));
    const N = Number(opts.products ?? 1_000_000);
    const durationS = Number(String(opts.duration ?? '10s').replace(/s$/, ''));
    const connections = Number(opts.connections ?? 4);
    // --db: the demo keeps its small data set apart from the full run's (each reuses its own when loaded).
    const DB = opts.db ?? 'mallscale_bench_attrs';
    if (!/^\w+$/.test(DB)) throw new Error(`--db must be a plain database name, got '${DB}'`);
    const primary = port('PRIMARY', 3307);
    const connect = async (db = DB) => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: primary, user: 'mallscale', password: 'mallscale', database: db, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z' });
      await c.query('SET SESSION sql_log_bin = 0'); // bench data stays on the primary (needs SUPER / SYSTEM_VARIABLES_ADMIN)
      return c;
    };
    const session = (c) => ({ query: async (sql, params) => (await c.query(sql, params))[0] });
    const admin = await connect('');
    await admin.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    await admin.end();
    const c = await connect();
    const q = session(c);
    const details = { products: N, promotions: {} };

    // ---- load (idempotent)
    const [[state]] = await c.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'eav_int'", [DB]);
    let loaded = 0;
    if (Number(state.n)) [[{ n: loaded }]] = await c.query('SELECT COUNT(*) AS n FROM products');
    if (Number(loaded) !== N) {
      ctx.log(`loading ${N} products (+ EAV rows) into ${DB}`);
      await c.query('SET FOREIGN_KEY_CHECKS = 0');
      for (const [t] of await c.query('SHOW TABLES').then(([rows]) => rows.map((r) => Object.values(r)))) await c.query(`DROP TABLE \`${t}\``);
      await c.query('SET FOREIGN_KEY_CHECKS = 1');
      for (const m of dbLib.loadMigrations('catalog')) for (const stmt of dbLib.splitStatements(m.sql)) await c.query(stmt);
      for (const stmt of EAV_DDL) await c.query(stmt);
      const cats = [];
      let attrId = 1;
      const eavAttr = {};
      for (const d of catalog.CATEGORY_DEFINITIONS) {
        const [res] = await c.query('INSERT INTO categories (code, name, attribute_schema) VALUES (?, ?, ?)', [d.code, d.name, JSON.stringify(d.schema)]);
        cats.push({ id: Number(res.insertId), code: d.code });
        for (const a of catalog.AttributeSchema.compile(d.code, d.schema).attributes.values()) {
          const type = a.kind === 'integer' || a.kind === 'boolean' ? 'int' : a.kind === 'number' ? 'decimal' : a.kind === 'date' ? 'date' : 'varchar';
          eavAttr[`${d.code}.${a.name}`] = { id: attrId, type };
          await c.query('INSERT INTO eav_attributes (id, category_id, code, backend_type) VALUES (?, ?, ?, ?)', [attrId++, res.insertId, a.name, type]);
        }
      }
      const r = rng(42);
      const writers = [await connect(), await connect()];
      const t0 = Date.now();
      let next = 1;
      const batch = 2000;
      const work = async (w) => {
        for (;;) {
          const from = next;
          if (from > N) return;
          next += batch;
          const to = Math.min(N, from + batch - 1);
          const products = [];
          const eav = { int: [], decimal: [], date: [], varchar: [] };
          for (let id = from; id <= to; id++) {
            const cat = cats[id % cats.length];
            const attrs = attributesFor(cat.code, r);
            products.push([id, cat.id, `${cat.code} ${id}`, 100 + Math.floor(r() * 200000), 10, JSON.stringify(attrs)]);
            for (const [k, v] of Object.entries(attrs)) {
              const a = eavAttr[`${cat.code}.${k}`];
              for (const one of Array.isArray(v) ? v : [v]) eav[a.type].push([id, a.id, typeof one === 'boolean' ? Number(one) : one]);
            }
          }
          await w.query('INSERT INTO products (id, category_id, name, price_cents, stock, attributes) VALUES ?', [products]);
          for (const [type, rows] of Object.entries(eav)) if (rows.length) await w.query(`INSERT INTO eav_${type} (product_id, attribute_id, value) VALUES ?`, [rows]);
          if ((to / batch) % 50 === 0 || to === N) ctx.log(`loaded ${to}/${N} (${Math.round(to / ((Date.now() - t0) / 1000))}/s)`);
        }
      };
      await Promise.all(writers.map(work));
      for (const w of writers) await w.end();
      details.loadSeconds = Math.round((Date.now() - t0) / 1000);
      // Online promotion of every x-filterable attribute on the loaded table (what an operator would run).
      const promoter = new catalog.AttributePromoter(q, ctx.log);
      for (const cat of cats) for (const rep of await promoter.promoteDeclared(cat.code)) details.promotions[`${cat.code}.${rep.attribute}`] = rep.ms;
      await c.query('ANALYZE TABLE products, product_attribute_values, eav_int, eav_decimal, eav_date, eav_varchar');
    }

    // ---- the three queries
    const [[food]] = await c.query("SELECT id FROM categories WHERE code = 'food'");
    const [[weight]] = await c.query("SELECT a.id FROM eav_attributes a WHERE a.category_id = ? AND a.code = 'weightG'", [food.id]);
    const col = catalog.columnName(Number(food.id), 'weightG');
    const ix = catalog.indexName(Number(food.id), 'weightG');
    const modes = filterQueries({ products: 'products', eavInt: 'eav_int', column: col, index: ix, categoryId: food.id, attributeId: weight.id });
    const only = opts.modes ? String(opts.modes).split(',') : Object.keys(modes);
    const handlerReads = async () => {
      const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Handler_read%'");
      return rows.reduce((s, r) => s + Number(r.Value), 0);
    };

    // Storage each approach needs for ALL attributes of all products.
    const [[json]] = await c.query('SELECT SUM(LENGTH(attributes)) AS b FROM products');
    const [ixs] = await c.query(
      "SELECT index_name AS name, stat_value * @@innodb_page_size AS b FROM mysql.innodb_index_stats WHERE database_name = ? AND stat_name = 'size' AND (table_name = 'product_attribute_values' OR index_name LIKE 'ix\\_attr\\_%')",
      [DB],
    );
    const [[eavSize]] = await c.query("SELECT SUM(data_length + index_length) AS b FROM information_schema.TABLES WHERE table_schema = ? AND table_name LIKE 'eav\\_%'", [DB]);
    const mb = (b) => Math.round((Number(b) / 1048576) * 10) / 10;
    const storage = {
      indexed: mb(Number(json.b) + ixs.reduce((s, r) => s + Number(r.b), 0)),
      eav: mb(eavSize.b),
      scan: mb(json.b),
    };
    const [[ixSize]] = await c.query("SELECT stat_value * @@innodb_page_size AS b FROM mysql.innodb_index_stats WHERE database_name = ? AND table_name = 'products' AND index_name = ? AND stat_name = 'size'", [DB, ix]);
    const [[eavIx]] = await c.query("SELECT stat_value * @@innodb_page_size AS b FROM mysql.innodb_index_stats WHERE database_name = ? AND table_name = 'eav_int' AND index_name = 'ix_eav_int_attribute_value' AND stat_name = 'size'", [DB]);
    const filterIndex = { indexed: mb(ixSize?.b ?? 0), eav: mb(eavIx?.b ?? 0), scan: 0 };

    const results = {};
    const plans = {};
    const r = rng(7);
    const weightOf = () => 50 + Math.floor(r() * 2000);
    for (const mode of only) {
      const build = modes[mode];
      // Rows examined: Handler_read_* delta of one session per query, minus what SHOW STATUS itself reads.
      const overhead = -(await handlerReads()) + (await handlerReads());
      let examined = 0;
      const samples = 20;
      for (let i = 0; i < samples; i++) {
        const [sql, params] = build(weightOf());
        const before = await handlerReads();
        await c.query(sql, params);
        examined += (await handlerReads()) - before - overhead;
      }
      const [plan] = await c.query(`EXPLAIN ${build(500)[0]}`, build(500)[1]);
      plans[mode] = plan.map((p) => ({ table: p.table, type: p.type, key: p.key, rows: Number(p.rows), extra: p.Extra }));
      // Latency under load: `connections` sessions, each running the query back to back.
      const sessions = await Promise.all(Array.from({ length: connections }, () => connect()));
      const warmUntil = Date.now() + 1000;
      const lat = [];
      let errors = 0;
      const until = warmUntil + durationS * 1000;
      await Promise.all(
        sessions.map(async (s) => {
          while (Date.now() < until) {
            const [sql, params] = build(weightOf());
            const t = process.hrtime.bigint();
            try {
              await s.query(sql, params);
              if (Date.now() > warmUntil) lat.push(Number(process.hrtime.bigint() - t) / 1e6);
            } catch {
              errors++;
            }
          }
        }),
      );
      for (const s of sessions) await s.end();
      lat.sort((a, b) => a - b);
      results[mode] = {
        rps: Math.round(lat.length / durationS),
        p50_ms: Math.round(percentile(lat, 50) * 100) / 100,
        p99_ms: Math.round(percentile(lat, 99) * 100) / 100,
        errors,
        requests: lat.length,
        extra: { rows_examined: Math.round(examined / samples), storage_mb: storage[mode], filter_index_mb: filterIndex[mode] },
      };
      ctx.log(`${mode}: ${results[mode].rps} q/s, p50 ${results[mode].p50_ms} ms, p99 ${results[mode].p99_ms} ms, ${results[mode].extra.rows_examined} rows examined`);
    }
    await c.end();
    const ratios = {};
    const ex = (m) => results[m]?.extra.rows_examined;
    if (ex('scan') && ex('indexed')) ratios.scan_vs_indexed_rows = Math.round((ex('scan') / ex('indexed')) * 10) / 10;
    if (ex('eav') && ex('indexed')) ratios.eav_vs_indexed_rows = Math.round((ex('eav') / ex('indexed')) * 10) / 10;
    if (results.indexed && results.scan) ratios.indexed_vs_scan_qps = Math.round((results.indexed.rps / Math.max(1, results.scan.rps)) * 10) / 10;
    if (results.indexed && results.eav) ratios.indexed_vs_eav_qps = Math.round((results.indexed.rps / Math.max(1, results.eav.rps)) * 10) / 10;
    if (storage.eav && storage.indexed) ratios.eav_vs_indexed_storage = Math.round((storage.eav / storage.indexed) * 100) / 100;
    details.plans = plans;
    const tables = [['| mode | plan (EXPLAIN for weightG = 500) |', '|---|---|', ...Object.entries(plans).map(([m, p]) => `| ${m} | ${p.map((x) => `${x.table}: ${x.type} ${x.key ?? '-'} ~${x.rows} ${x.extra ?? ''}`).join('; ')} |`)].join('\n')];
    return { modes: results, ratios, tables, details };
  },
};

// `npm run demo -- q1b` (scripts/demo.mjs): the short run at the top of docs/q1b-category-attributes.md, on 30k
// products in their own database (loaded once, reused), 3 s of queries per mode.
export const demo = {
  opts: { products: 30000, duration: '3s', connections: 2, db: 'mallscale_bench_attrs_demo' },
  headline(r) {
    const m = r.modes;
    const rows = (k) => m[k]?.extra.rows_examined;
    return `**the unindexed scan examines ${r.ratios.scan_vs_indexed_rows}× the rows of the indexed column** (${rows('scan')} vs ${rows('indexed')} per query; EAV ${rows('eav')}), and answers ${m.indexed.rps} vs ${m.scan.rps} queries/s (EAV ${m.eav.rps}); EAV needs ${r.ratios.eav_vs_indexed_storage}× the storage. The indexed generated column keeps the JSON document and still filters through an index; the scan's cost grows with the category, the index's with the matches.`;
  },
};
