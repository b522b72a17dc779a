/**
 * The design the attribute columns replace, kept to compare against: Magento-style EAV (typed value tables
 * eav_int / eav_decimal / eav_date / eav_varchar, each with the best index for a filter, (attribute_id, value,
 * product_id)), and one filter ("food with weightG = w, first page by price") written three ways: the indexed
 * generated column the API runs, the EAV join, and the JSON document with that index ignored. The benchmark
 * (load-tests/scenarios/attribute-filter.ts) and the console's Q1.b experiment run these same statements.
 */
import type { AttributeKind } from './attribute-schema.js';

export type EavBackend = 'int' | 'decimal' | 'date' | 'varchar';
const VALUE_TYPE: Record<EavBackend, string> = { int: 'BIGINT', decimal: 'DECIMAL(20,6)', date: 'DATE', varchar: 'VARCHAR(191)' };

/** The EAV value table an attribute of `kind` is stored in (booleans as 0/1 in eav_int). */
export const eavBackendOf = (kind: AttributeKind): EavBackend => (kind === 'integer' || kind === 'boolean' ? 'int' : kind === 'number' ? 'decimal' : kind === 'date' ? 'date' : 'varchar');

/** The value table of one backend type, named `table` (default eav_<backend>). */
export function eavValueTableSql(backend: EavBackend, table = `eav_${backend}`): string {
  return `CREATE TABLE ${table} (product_id BIGINT UNSIGNED NOT NULL, attribute_id SMALLINT UNSIGNED NOT NULL, value ${VALUE_TYPE[backend]} NOT NULL,
     PRIMARY KEY (product_id, attribute_id, value), KEY ix_eav_${backend}_attribute_value (attribute_id, value, product_id)) ENGINE=InnoDB`;
}

/** The whole EAV schema: the attribute dictionary and the four value tables. */
export const EAV_DDL: string[] = [
  `CREATE TABLE eav_attributes (id SMALLINT UNSIGNED NOT NULL PRIMARY KEY, category_id INT UNSIGNED NOT NULL, code VARCHAR(64) NOT NULL,
     backend_type ENUM('int','decimal','varchar','date') NOT NULL, UNIQUE KEY uq_eav_attributes (category_id, code)) ENGINE=InnoDB`,
  ...(['int', 'decimal', 'date', 'varchar'] as const).map((b) => eavValueTableSql(b)),
];

export type FilterWay = 'indexed' | 'eav' | 'scan';

/**
 * The filter "food with weightG = w, first page by price" three ways: (w) => [sql, params]. Table names are
 * parameters so the console runs the same statements on its own generated copies.
 */
export function filterThreeWays(t: { products: string; eavInt: string; column: string; index: string; categoryId: number; attributeId: number }): Record<FilterWay, (w: number) => [string, unknown[]]> {
  const { products, eavInt, column, index, categoryId, attributeId } = t;
  const cols = 'p.id, p.name, p.price_cents';
  return {
    indexed: (w) => [`SELECT ${cols} FROM ${products} p WHERE p.category_id = ? AND p.\`${column}\` = ? ORDER BY p.price_cents, p.id LIMIT 20`, [categoryId, w]],
    eav: (w) => [`SELECT ${cols} FROM ${eavInt} v JOIN ${products} p ON p.id = v.product_id WHERE v.attribute_id = ? AND v.value = ? AND p.category_id = ? ORDER BY p.price_cents, p.id LIMIT 20`, [attributeId, w, categoryId]],
    scan: (w) => [`SELECT ${cols} FROM ${products} p IGNORE INDEX (\`${index}\`) WHERE p.category_id = ? AND CAST(JSON_UNQUOTE(JSON_EXTRACT(p.attributes, '$.weightG')) AS SIGNED) = ? ORDER BY p.price_cents, p.id LIMIT 20`, [categoryId, w]],
  };
}
