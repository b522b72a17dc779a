/**
 * AttributeFilter: turns `attr.<name>[<op>]=<value>` query parameters into parameterised SQL conditions.
 *
 * Design point: the client chooses among what the category's schema declares, never writes SQL. A key is
 * matched against a strict pattern, its name looked up in the schema (unknown -> 400 listing the filterable
 * ones), its operator checked against the attribute's type (-> 400 listing the allowed ones), its value
 * cast by the schema (enum membership, integer, date, …). Column names come from attribute-columns.ts
 * (category id + declared name); every value is a `?` parameter. Only attributes whose index is READY are
 * usable, so a filter can never turn into a full scan of the products table. Trade-off: no free-form
 * queries (OR, nested JSON paths); each new need is a schema change, not a query string.
 */
import { ApiError } from '#libs/core';
import { columnName } from './attribute-columns.js';
import type { AttributeDef, AttributeKind, AttributeSchema } from './attribute-schema.js';

export type FilterOp = 'eq' | 'in' | 'gte' | 'lte' | 'between' | 'contains';

export const OPERATORS: Record<AttributeKind, FilterOp[]> = {
  enum: ['eq', 'in'],
  string: ['eq', 'in'],
  integer: ['eq', 'in', 'gte', 'lte', 'between'],
  number: ['eq', 'in', 'gte', 'lte', 'between'],
  date: ['eq', 'in', 'gte', 'lte', 'between'],
  boolean: ['eq'],
  'enum-array': ['contains'],
};

export interface AppliedFilter {
  attribute: string;
  op: FilterOp;
  values: (string | number)[];
}

export interface CompiledFilter {
  /** SQL conditions on `p` (the products alias), joined with AND by the caller. */
  where: string[];
  params: unknown[];
  applied: AppliedFilter[];
}

/**
 * 400: the attribute is declared filterable but the node that read the registry does not list its index as
 * ready. A distinct class because on a replica this can be replication lag behind a finished promotion (the
 * caller may then ask the primary), while on the primary it means the index is really not usable yet.
 */
export class IndexNotReady extends ApiError {
  constructor(
    readonly attribute: string,
    categoryCode: string,
  ) {
    super(400, 'bad_request', `attribute '${attribute}' is declared filterable but its index is not ready yet (npm run attributes -- promote ${categoryCode} ${attribute})`);
  }
}

const KEY = /^attr\.([A-Za-z][A-Za-z0-9]{0,39})(?:\[([a-z]{1,12})\])?$/;
const MAX_VALUE_LENGTH = 500;
const MAX_LIST = 50;

/** Client text echoed in an error: short and JSON-quoted, so a hostile string cannot shape the message. */
export function echo(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function castOne(def: AttributeDef, raw: string): string | number {
  const bad = (why: string) => ApiError.badRequest(`attr.${def.name}: ${echo(raw)} ${why}`);
  switch (def.kind) {
    case 'integer': {
      if (!/^-?\d{1,15}$/.test(raw)) throw bad('is not an integer');
      return Number(raw);
    }
    case 'number': {
      if (!/^-?\d{1,13}(\.\d{1,6})?$/.test(raw)) throw bad('is not a number (up to 6 decimals)');
      return Number(raw);
    }
    case 'date': {
      const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
      if (!d || new Date(`${raw}T00:00:00Z`).toISOString().slice(0, 10) !== raw) throw bad('is not a date (YYYY-MM-DD)');
      return raw;
    }
    case 'boolean':
      if (raw !== 'true' && raw !== 'false') throw bad('must be true or false');
      return raw === 'true' ? 1 : 0;
    case 'enum':
    case 'enum-array':
      if (!def.values!.includes(raw)) throw bad(`is not one of ${def.values!.join(', ')}`);
      return raw;
    case 'string':
      if (raw.length === 0 || raw.length > (def.maxLength ?? 191)) throw bad(`must be 1..${def.maxLength ?? 191} characters`);
      return raw;
  }
}

export class AttributeFilter {
  constructor(
    private readonly schema: AttributeSchema,
    private readonly categoryId: number,
    /** Names of attributes whose index is ready (generated column or values rows). */
    private readonly indexed: ReadonlySet<string>,
  ) {}

  /** Parses every `attr.*` key of `query`; other keys must be in `reserved` (e.g. category, sort, cursor). */
  compile(query: Record<string, unknown>, reserved: readonly string[]): CompiledFilter {
    const out: CompiledFilter = { where: [], params: [], applied: [] };
    const filterable = this.schema.filterable().map((a) => a.name);
    for (const [key, rawValue] of Object.entries(query)) {
      if (reserved.includes(key)) continue;
      if (!key.startsWith('attr.')) throw ApiError.badRequest(`unknown query parameter ${echo(key)} (allowed: ${[...reserved, 'attr.<name>[<op>]'].join(', ')})`);
      const m = KEY.exec(key);
      if (!m) throw ApiError.badRequest(`malformed filter ${echo(key)}: expected attr.<name>[<op>] with a declared attribute name`);
      const [, name, opText = 'eq'] = m;
      const def = this.schema.attributes.get(name);
      if (!def || !def.filterable) {
        throw ApiError.badRequest(`attribute ${echo(name)} is not filterable in category '${this.schema.categoryCode}' (filterable: ${filterable.join(', ') || 'none'})`, { allowed: filterable });
      }
      const ops = OPERATORS[def.kind];
      if (!(ops as string[]).includes(opText)) throw ApiError.badRequest(`operator ${echo(opText)} is not allowed for ${def.kind} attribute '${name}' (allowed: ${ops.join(', ')})`, { allowed: ops });
      if (!this.indexed.has(name)) throw new IndexNotReady(name, this.schema.categoryCode);
      if (typeof rawValue !== 'string') throw ApiError.badRequest(`${echo(key)} must be given once, as text`);
      if (rawValue.length > MAX_VALUE_LENGTH) throw ApiError.badRequest(`${echo(key)}: value longer than ${MAX_VALUE_LENGTH} characters`);
      this.add(out, def, opText as FilterOp, rawValue);
    }
    return out;
  }

  private add(out: CompiledFilter, def: AttributeDef, op: FilterOp, raw: string): void {
    const list = op === 'in' || op === 'between' || op === 'contains' ? raw.split(',') : [raw];
    if (list.length > MAX_LIST) throw ApiError.badRequest(`attr.${def.name}[${op}]: at most ${MAX_LIST} values`);
    if (op === 'between' && list.length !== 2) throw ApiError.badRequest(`attr.${def.name}[between] needs two values: low,high`);
    const values = list.map((v) => castOne(def, v));
    if (op === 'between' && values[0] > values[1]) throw ApiError.badRequest(`attr.${def.name}[between]: low must not exceed high`);
    out.applied.push({ attribute: def.name, op, values });
    if (op === 'contains') {
      // One EXISTS per value: the product has all of them. (category_id, attribute, value, product_id) is the PK.
      for (const v of values) {
        out.where.push('EXISTS (SELECT 1 FROM product_attribute_values v WHERE v.category_id = ? AND v.attribute = ? AND v.value = ? AND v.product_id = p.id)');
        out.params.push(this.categoryId, def.name, v);
      }
      return;
    }
    const col = `p.\`${columnName(this.categoryId, def.name)}\``;
    switch (op) {
      case 'eq':
        out.where.push(`${col} = ?`);
        break;
      case 'in':
        out.where.push(`${col} IN (${values.map(() => '?').join(', ')})`);
        break;
      case 'gte':
        out.where.push(`${col} >= ?`);
        break;
      case 'lte':
        out.where.push(`${col} <= ?`);
        break;
      case 'between':
        out.where.push(`${col} BETWEEN ? AND ?`);
        break;
    }
    out.params.push(...values);
  }
}
