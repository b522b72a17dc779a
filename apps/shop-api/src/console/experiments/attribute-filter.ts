/**
 * Q1.b at run time: one attribute filter ("food with weightG = w, first page by price") three ways on the
 * same generated products: the JSON document + a VIRTUAL generated column with an index (the statements
 * AttributePromoter runs, on the copy), Magento-style EAV (an eav_int table with its best index, joined back),
 * and the JSON document with that index ignored (JSON_EXTRACT on every row of the category). The queries are
 * the benchmark's (libs/attributes eav-comparison.ts, filterThreeWays); rows examined come from the
 * server's Handler_read_* counters. Every mode must return the same page, or the run fails. The copies are
 * the experiment's own, on shard-0, dropped afterwards.
 */
import { AttributeSchema, CATEGORY_DEFINITIONS, addColumnSql, addIndexSql, columnName, eavValueTableSql, filterThreeWays, indexName, type FilterWay } from '#libs/attributes';
import { assertTime, preset, type Experiment } from './experiment.js';
import { median, scratchTables } from './scratch.js';

const ALL_PRODUCTS = 60_000;
const CATEGORIES = 3; // category 1 is "food" (a third of the products), the filter's category
const FOOD = 1;
const WEIGHT_ATTRIBUTE_ID = 1;
const ALL_FILTERS = 15;

type Mode = FilterWay;

const LABEL: Record<Mode, string> = {
  indexed: 'JSON + indexed generated column',
  eav: 'EAV (eav_int, index on attribute, value)',
  scan: 'JSON, no index (JSON_EXTRACT per row)',
};

export const attributeFilter: Experiment = {
  name: 'attribute-filter',
  title: 'Q1.b · attribute filter: indexed vs EAV vs scan',
  explain: `The same filter (food with weightG = w, first page by price) over ${ALL_PRODUCTS} generated products: indexed generated column vs EAV join vs unindexed JSON scan — rows examined and ms.`,
  doc: 'docs/q1b-category-attributes.md',
  seconds: 10,
  async run(ctx) {
    const PRODUCTS = preset(ctx, ALL_PRODUCTS, 15_000);
    const FILTERS = preset(ctx, ALL_FILTERS, 6);
    const food = CATEGORY_DEFINITIONS.find((d) => d.code === 'food');
    const def = food && AttributeSchema.compile('food', food.schema).attributes.get('weightG');
    if (!def) throw new Error('the food category has no weightG attribute');
    const s = await scratchTables(ctx, 'q1b', ['products', 'eav_int']);
    const q = (sql: string, p: unknown[] = []) => s.session.query(sql, p);
    const P = s.t.products;
    const E = s.t.eav_int;

    assertTime(ctx, 8000);
    ctx.progress(`generating ${PRODUCTS} products (JSON attributes) into ${P} and their weightG rows into ${E} on ${s.node.name}`);
    await q(`CREATE TABLE ${P} (
      id BIGINT UNSIGNED NOT NULL, category_id INT UNSIGNED NOT NULL, name VARCHAR(300) NOT NULL, price_cents INT UNSIGNED NOT NULL,
      attributes JSON NOT NULL, PRIMARY KEY (id), KEY ix_products_category_price (category_id, price_cents, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    await q(eavValueTableSql('int', E));
    const seq = s.mariadb ? `seq_1_to_${PRODUCTS}` : 's';
    const cte = s.mariadb ? '' : `WITH RECURSIVE s (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < ${PRODUCTS}) `;
    if (!s.mariadb) await q(`SET SESSION cte_max_recursion_depth = ${PRODUCTS + 1}`);
    const weight = `50 + (seq * 7919) % 2000`;
    await q(`INSERT INTO ${P} (id, category_id, name, price_cents, attributes) ${cte}SELECT seq, 1 + seq % ${CATEGORIES}, CONCAT('product ', seq), 100 + (seq * 104729) % 200000,
      IF(1 + seq % ${CATEGORIES} = ${FOOD}, JSON_OBJECT('weightG', ${weight}, 'storage', ELT(1 + seq % 3, 'room', 'chilled', 'frozen'), 'expiryDate', '2027-01-01'),
         JSON_OBJECT('brand', CONCAT('brand ', seq % 50), 'ramGb', 4 * (1 + seq % 16)))
      FROM ${seq}`);
    await q(`INSERT INTO ${E} (product_id, attribute_id, value) SELECT id, ${WEIGHT_ATTRIBUTE_ID}, CAST(JSON_EXTRACT(attributes, '$.weightG') AS SIGNED) FROM ${P} WHERE category_id = ${FOOD}`);
    ctx.progress('promoting weightG on the copy: ADD COLUMN … VIRTUAL, ADD INDEX (AttributePromoter’s statements)');
    for (const sql of [addColumnSql(FOOD, def), addIndexSql(FOOD, def)]) await q(sql.replace('ALTER TABLE products ', `ALTER TABLE ${P} `));
    await q(`ANALYZE TABLE ${P}, ${E}`);

    const modes = filterThreeWays({ products: P, eavInt: E, column: columnName(FOOD, 'weightG'), index: indexName(FOOD, 'weightG'), categoryId: FOOD, attributeId: WEIGHT_ATTRIBUTE_ID });
    const weights = Array.from({ length: FILTERS }, (_, i) => 50 + ((i * 131) % 2000));
    const stats: Record<Mode, { rows: number[]; ms: number[] }> = { indexed: { rows: [], ms: [] }, eav: { rows: [], ms: [] }, scan: { rows: [], ms: [] } };
    ctx.progress(`${FILTERS} filters (weightG = w), each three ways`);
    for (const w of weights) {
      assertTime(ctx, 1000);
      const pages: string[] = [];
      for (const m of ['indexed', 'eav', 'scan'] as Mode[]) {
        const [sql, params] = modes[m](w);
        const r = await s.examined(sql, params);
        stats[m].rows.push(r.rows);
        stats[m].ms.push(r.ms);
        pages.push((r.result as { id: string }[]).map((x) => String(x.id)).join(','));
      }
      if (new Set(pages).size !== 1) throw new Error(`the three ways disagree on weightG = ${w}`);
    }
    const avg = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10;
    const out = Object.fromEntries((['indexed', 'eav', 'scan'] as Mode[]).map((m) => [m, { rows: avg(stats[m].rows), ms: median(stats[m].ms) }])) as Record<Mode, { rows: number; ms: number }>;
    const ratio = Math.round((out.scan.rows / Math.max(1, out.indexed.rows)) * 10) / 10;
    return {
      name: this.name,
      doc: this.doc,
      rows: (['indexed', 'eav', 'scan'] as Mode[]).map((m) => ({ way: LABEL[m], 'rows examined per query (Handler_read_*)': out[m].rows, 'median ms': out[m].ms, filters: FILTERS })),
      numbers: {
        products: PRODUCTS,
        filters: FILTERS,
        rowsIndexed: out.indexed.rows,
        rowsEav: out.eav.rows,
        rowsScan: out.scan.rows,
        msIndexed: out.indexed.ms,
        msEav: out.eav.ms,
        msScan: out.scan.ms,
        scanVsIndexedRows: ratio,
      },
      headline: `The same page of "food with weightG = w" examines ${out.indexed.rows} rows with the indexed generated column, ${out.eav.rows} through EAV and ${out.scan.rows} with the JSON scan (${ratio}× the indexed; median ${out.indexed.ms} / ${out.eav.ms} / ${out.scan.ms} ms), all three returning the same rows.`,
    };
  },
};
