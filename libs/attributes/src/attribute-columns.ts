/**
 * Where an indexed attribute lives in SQL. Names and expressions are derived ONLY from a category id (a
 * number from the database) and an attribute name that AttributeSchema has already checked against
 * ATTRIBUTE_NAME — never from request text.
 *
 * Scalars: a VIRTUAL generated column on products, guarded by the category, plus an ordinary index
 * (category_id, column). Works on MySQL 8.4 and MariaDB 10.11 alike; virtual columns cost no row storage,
 * only the index. Arrays (allergens): MariaDB has no multi-valued index, so their values are rows of
 * product_attribute_values, written in the same transaction as the product.
 */
import { ATTRIBUTE_NAME, type AttributeDef } from './attribute-schema.js';

export type IndexStorage = 'column' | 'values';

export function storageFor(def: AttributeDef): IndexStorage {
  return def.kind === 'enum-array' ? 'values' : 'column';
}

function checked(categoryId: number, name: string): void {
  if (!Number.isSafeInteger(categoryId) || categoryId <= 0) throw new Error(`bad category id ${categoryId}`);
  if (!ATTRIBUTE_NAME.test(name)) throw new Error(`unsafe attribute name ${JSON.stringify(name).slice(0, 60)}`);
}

export function columnName(categoryId: number, name: string): string {
  checked(categoryId, name);
  return `attr_${categoryId}_${name}`;
}

export function indexName(categoryId: number, name: string): string {
  checked(categoryId, name);
  return `ix_attr_${categoryId}_${name}`;
}

export function sqlTypeOf(def: AttributeDef): string {
  switch (def.kind) {
    case 'enum':
    case 'string':
      return `VARCHAR(${Math.min(191, Math.max(1, def.maxLength ?? 191))})`;
    case 'integer':
      return 'BIGINT';
    case 'number':
      return 'DECIMAL(20,6)';
    case 'date':
      return 'DATE';
    case 'boolean':
      return 'TINYINT';
    default:
      throw new Error(`attribute '${def.name}' (${def.kind}) is not stored in a generated column`);
  }
}

/** The generated column's expression: NULL for every other category, the typed value for this one. */
export function columnExpression(categoryId: number, def: AttributeDef): string {
  checked(categoryId, def.name);
  const text = `JSON_UNQUOTE(JSON_EXTRACT(attributes, '$.${def.name}'))`;
  const typed =
    def.kind === 'integer'
      ? `CAST(${text} AS SIGNED)`
      : def.kind === 'number'
        ? `CAST(${text} AS DECIMAL(20,6))`
        : def.kind === 'date'
          ? `CAST(${text} AS DATE)`
          : def.kind === 'boolean'
            ? `(${text} = 'true')`
            : text;
  return `(CASE WHEN category_id = ${categoryId} THEN ${typed} END)`;
}

export function addColumnSql(categoryId: number, def: AttributeDef): string {
  return `ALTER TABLE products ADD COLUMN \`${columnName(categoryId, def.name)}\` ${sqlTypeOf(def)} AS ${columnExpression(categoryId, def)} VIRTUAL, ALGORITHM=INSTANT`;
}

export function addIndexSql(categoryId: number, def: AttributeDef): string {
  return `ALTER TABLE products ADD INDEX \`${indexName(categoryId, def.name)}\` (category_id, \`${columnName(categoryId, def.name)}\`), ALGORITHM=INPLACE, LOCK=NONE`;
}
