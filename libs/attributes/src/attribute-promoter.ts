/**
 * AttributePromoter: makes a declared attribute filterable, online, while reads and writes continue.
 *
 * Design point: adding a NON-filterable attribute is only a schema edit (the JSON column takes it, no DDL).
 * Promoting one to filterable is an online DDL step:
 *   1. mark `x-filterable` in the category's schema and register the index as 'building' — in a
 *      transaction holding the category row FOR UPDATE, so it waits for in-flight product writes of that
 *      category (they hold the same row in share mode) and every later write sees 'building';
 *   2. scalars: ADD COLUMN … VIRTUAL (ALGORITHM=INSTANT: metadata only) then ADD INDEX (ALGORITHM=INPLACE,
 *      LOCK=NONE: concurrent DML continues; the explicit clauses make the server refuse rather than
 *      silently copy the table). The engine maintains a generated column on every write, so nothing can be
 *      missed. Arrays: backfill product_attribute_values in id batches with INSERT IGNORE … SELECT over
 *      JSON_TABLE, each batch holding the category row; concurrent writers maintain their own rows since step 1;
 *   3. mark the index 'ready': only now do filters use it.
 * A short lock_wait_timeout bounds the metadata lock each ALTER needs, so a long transaction makes the
 * promotion fail (retry later) instead of queueing every query on products behind it.
 * Trade-off: one column + one index per filterable attribute on one wide table (InnoDB allows 64
 * secondary indexes): fine for dozens of facets, not for thousands — see docs/q1b-category-attributes.md.
 *
 * Runs on ONE session (a TypeORM QueryRunner or a mysql2 connection), because it uses explicit transactions.
 */
import { addColumnSql, addIndexSql, columnName, indexName, storageFor, type IndexStorage } from './attribute-columns.js';
import { AttributeSchema, SchemaError, type AttributeDef } from './attribute-schema.js';
import { affectedRows } from '#libs/db';

export interface Session {
  query(sql: string, params?: unknown[]): Promise<any>;
}

export interface PromotionReport {
  category: string;
  attribute: string;
  storage: IndexStorage;
  state: 'ready';
  alreadyReady: boolean;
  statements: string[];
  backfilledRows: number;
  ms: number;
}

export interface IndexInfo {
  attribute: string;
  storage: IndexStorage;
  state: 'building' | 'ready';
}

const BACKFILL_BATCH = 5000;

export class AttributePromoter {
  constructor(
    private readonly session: Session,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  async indexes(categoryId: number): Promise<IndexInfo[]> {
    return (await this.session.query('SELECT attribute, storage, state FROM attribute_indexes WHERE category_id = ? ORDER BY attribute', [categoryId])).map((r: any) => ({
      attribute: r.attribute,
      storage: r.storage,
      state: r.state,
    }));
  }

  async promote(categoryCode: string, attribute: string): Promise<PromotionReport> {
    const t0 = Date.now();
    const statements: string[] = [];
    // Step 1: schema flag + registry row, serialised against product writes of this category.
    await this.session.query('START TRANSACTION');
    let categoryId: number;
    let def: AttributeDef;
    let previous: string | undefined;
    try {
      const [cat] = await this.session.query('SELECT id, attribute_schema FROM categories WHERE code = ? FOR UPDATE', [categoryCode]);
      if (!cat) throw new SchemaError(`unknown category '${categoryCode}'`);
      categoryId = Number(cat.id);
      const raw = typeof cat.attribute_schema === 'string' ? JSON.parse(cat.attribute_schema) : cat.attribute_schema;
      const declared = AttributeSchema.compile(categoryCode, raw).attributes;
      const found = declared.get(attribute);
      if (!found) throw new SchemaError(`category '${categoryCode}' declares no attribute '${attribute.slice(0, 40)}' (declared: ${[...declared.keys()].join(', ')})`);
      if (!found.filterable) {
        raw.properties[attribute]['x-filterable'] = true;
        // Compile again: a free string without maxLength cannot be indexed, and that must fail here.
        def = AttributeSchema.compile(categoryCode, raw).attributes.get(attribute)!;
        await this.session.query('UPDATE categories SET attribute_schema = ? WHERE id = ?', [JSON.stringify(raw), categoryId]);
      } else {
        def = found;
      }
      const [row] = await this.session.query('SELECT state FROM attribute_indexes WHERE category_id = ? AND attribute = ?', [categoryId, attribute]);
      previous = row?.state;
      if (!row) await this.session.query('INSERT INTO attribute_indexes (category_id, attribute, storage, state) VALUES (?, ?, ?, ?)', [categoryId, attribute, storageFor(def), 'building']);
      await this.session.query('COMMIT');
    } catch (e) {
      await this.session.query('ROLLBACK');
      throw e;
    }
    const storage = storageFor(def);
    if (previous === 'ready') return { category: categoryCode, attribute, storage, state: 'ready', alreadyReady: true, statements, backfilledRows: 0, ms: Date.now() - t0 };

    // Step 2: the online DDL (idempotent: a promotion interrupted half-way is simply run again).
    let backfilledRows = 0;
    await this.session.query('SET SESSION lock_wait_timeout = 10');
    if (storage === 'column') {
      if (!(await this.hasColumn(columnName(categoryId, attribute)))) statements.push(await this.run(addColumnSql(categoryId, def)));
      if (!(await this.hasIndex(indexName(categoryId, attribute)))) statements.push(await this.run(addIndexSql(categoryId, def)));
    } else {
      backfilledRows = await this.backfillValues(categoryId, def);
    }
    // Step 3: usable.
    await this.session.query("UPDATE attribute_indexes SET state = 'ready' WHERE category_id = ? AND attribute = ?", [categoryId, attribute]);
    this.log(`${categoryCode}.${attribute}: ready (${storage}) in ${Date.now() - t0} ms`);
    return { category: categoryCode, attribute, storage, state: 'ready', alreadyReady: false, statements, backfilledRows, ms: Date.now() - t0 };
  }

  /** Promotes every attribute the schema marks x-filterable (used by the seed). */
  async promoteDeclared(categoryCode: string): Promise<PromotionReport[]> {
    const [cat] = await this.session.query('SELECT attribute_schema FROM categories WHERE code = ?', [categoryCode]);
    if (!cat) throw new SchemaError(`unknown category '${categoryCode}'`);
    const out: PromotionReport[] = [];
    for (const a of AttributeSchema.compile(categoryCode, cat.attribute_schema).filterable()) out.push(await this.promote(categoryCode, a.name));
    return out;
  }

  /**
   * The reverse: filters stop using the index first (registry row gone, x-filterable cleared), then the
   * index and column are dropped online. The attribute itself stays in the documents and the schema.
   */
  async unindex(categoryCode: string, attribute: string): Promise<string[]> {
    const statements: string[] = [];
    await this.session.query('START TRANSACTION');
    let categoryId: number;
    try {
      const [cat] = await this.session.query('SELECT id, attribute_schema FROM categories WHERE code = ? FOR UPDATE', [categoryCode]);
      if (!cat) throw new SchemaError(`unknown category '${categoryCode}'`);
      categoryId = Number(cat.id);
      const raw = typeof cat.attribute_schema === 'string' ? JSON.parse(cat.attribute_schema) : cat.attribute_schema;
      const def = AttributeSchema.compile(categoryCode, raw).attributes.get(attribute);
      if (!def) throw new SchemaError(`category '${categoryCode}' declares no attribute '${attribute.slice(0, 40)}'`);
      if (raw.properties[attribute]['x-filterable']) {
        delete raw.properties[attribute]['x-filterable'];
        await this.session.query('UPDATE categories SET attribute_schema = ? WHERE id = ?', [JSON.stringify(raw), categoryId]);
      }
      await this.session.query('DELETE FROM attribute_indexes WHERE category_id = ? AND attribute = ?', [categoryId, attribute]);
      await this.session.query('COMMIT');
    } catch (e) {
      await this.session.query('ROLLBACK');
      throw e;
    }
    await this.session.query('SET SESSION lock_wait_timeout = 10');
    if (await this.hasIndex(indexName(categoryId, attribute))) statements.push(await this.run(`ALTER TABLE products DROP INDEX \`${indexName(categoryId, attribute)}\`, ALGORITHM=INPLACE, LOCK=NONE`));
    if (await this.hasColumn(columnName(categoryId, attribute))) statements.push(await this.run(`ALTER TABLE products DROP COLUMN \`${columnName(categoryId, attribute)}\`, ALGORITHM=INPLACE, LOCK=NONE`));
    statements.push(await this.run('DELETE FROM product_attribute_values WHERE category_id = ? AND attribute = ?', [categoryId, attribute]));
    return statements;
  }

  private async backfillValues(categoryId: number, def: AttributeDef): Promise<number> {
    // JSON_TABLE (MariaDB 10.6+, MySQL 8.0+) explodes the array; the path comes from the checked name.
    const path = `$.${def.name}[*]`;
    let after = '0';
    let total = 0;
    for (;;) {
      const [last] = await this.session.query('SELECT MAX(id) AS id FROM (SELECT id FROM products WHERE category_id = ? AND id > ? ORDER BY id LIMIT ?) b', [categoryId, after, BACKFILL_BATCH]);
      if (last?.id == null) break;
      // Each batch holds the category row FOR UPDATE: writers of this category take it in share mode
      // before touching any row, so they wait a few ms at their start instead of deadlocking with the
      // batch's locking read of products and its duplicate checks on product_attribute_values.
      await this.session.query('START TRANSACTION');
      try {
        await this.session.query('SELECT id FROM categories WHERE id = ? FOR UPDATE', [categoryId]);
        const res = await this.session.query(
          `INSERT IGNORE INTO product_attribute_values (category_id, attribute, value, product_id)
           SELECT p.category_id, ?, jt.v, p.id
             FROM products p, JSON_TABLE(p.attributes, '${path}' COLUMNS (v VARCHAR(191) PATH '$')) jt
            WHERE p.category_id = ? AND p.id > ? AND p.id <= ? AND jt.v IS NOT NULL`,
          [def.name, categoryId, after, String(last.id)],
        );
        await this.session.query('COMMIT');
        total += affectedRows(res);
      } catch (e) {
        await this.session.query('ROLLBACK');
        throw e;
      }
      after = String(last.id);
    }
    return total;
  }

  private async run(sql: string, params: unknown[] = []): Promise<string> {
    this.log(sql);
    await this.session.query(sql, params);
    return sql;
  }

  private async hasColumn(name: string): Promise<boolean> {
    const rows = await this.session.query("SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'products' AND COLUMN_NAME = ?", [name]);
    return rows.length > 0;
  }

  private async hasIndex(name: string): Promise<boolean> {
    const rows = await this.session.query("SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'products' AND INDEX_NAME = ?", [name]);
    return rows.length > 0;
  }
}
