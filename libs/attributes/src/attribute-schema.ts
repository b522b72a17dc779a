/**
 * AttributeSchema: a category's attribute document, declared as JSON Schema and compiled once with ajv.
 *
 * Design point: every category keeps its own attributes (food: expiry date, storage, grams, allergens;
 * laptop: cpu, RAM) in ONE JSON column of the one products table, so products still join and commit with
 * everything else in MySQL. The schema is the contract: writes are validated against it (every bad field
 * named), and it is the ONLY source of SQL identifiers and JSON paths for filters and generated columns —
 * attribute names are checked here against a strict identifier pattern, so nothing a client sends ever
 * becomes SQL text. Two extension keywords: `x-filterable: true` (may get a generated column + index) and
 * `x-unit: "g"` (documentation and UI). Trade-off: the database only sees LONGTEXT with JSON_VALID; types
 * are enforced by this class on the way in, not by the engine.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats: (ajv: Ajv) => Ajv = ((addFormatsModule as any).default ?? addFormatsModule) as any;

/** Attribute names become part of `attr_<categoryId>_<name>` columns and `$.<name>` paths: keep them dull. */
export const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9]{0,39}$/;

export type AttributeKind = 'enum' | 'string' | 'integer' | 'number' | 'boolean' | 'date' | 'enum-array';

export interface AttributeDef {
  name: string;
  kind: AttributeKind;
  filterable: boolean;
  required: boolean;
  unit?: string;
  /** Allowed values for enum and enum-array. */
  values?: string[];
  /** Longest possible string (enum values or maxLength) — the VARCHAR size of a generated column. */
  maxLength?: number;
}

export class SchemaError extends Error {
  override name = 'SchemaError';
}

export interface AttributeProblem {
  field: string;
  problems: string[];
}

/** Largest VARCHAR we index for a free string (utf8mb4, comfortably inside InnoDB's 3072-byte key limit). */
const MAX_INDEXED_STRING = 191;

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: false });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'x-filterable', schemaType: 'boolean' });
  ajv.addKeyword({ keyword: 'x-unit', schemaType: 'string' });
  return ajv;
}

function kindOf(name: string, p: any): { kind: AttributeKind; values?: string[]; maxLength?: number } {
  const where = `attribute '${name}'`;
  if (!p || typeof p !== 'object') throw new SchemaError(`${where} must be a schema object`);
  if (p.type === 'array') {
    const items = p.items ?? {};
    if (items.type !== 'string' || !Array.isArray(items.enum)) throw new SchemaError(`${where}: arrays must be arrays of a string enum`);
    const values = items.enum.map(String);
    return { kind: 'enum-array', values, maxLength: Math.max(...values.map((v: string) => v.length)) };
  }
  if (p.type === 'string' && Array.isArray(p.enum)) {
    const values = p.enum.map(String);
    return { kind: 'enum', values, maxLength: Math.max(...values.map((v: string) => v.length)) };
  }
  if (p.type === 'string' && p.format === 'date') return { kind: 'date' };
  if (p.type === 'string') return { kind: 'string', maxLength: typeof p.maxLength === 'number' ? p.maxLength : undefined };
  if (p.type === 'integer' || p.type === 'number' || p.type === 'boolean') return { kind: p.type };
  throw new SchemaError(`${where}: type must be string, integer, number, boolean, date (string + format date), string enum or array of string enum`);
}

export class AttributeSchema {
  readonly attributes: ReadonlyMap<string, AttributeDef>;
  private readonly validateFn: ValidateFunction;

  private constructor(
    readonly categoryCode: string,
    readonly schema: Record<string, any>,
    attributes: Map<string, AttributeDef>,
    validateFn: ValidateFunction,
  ) {
    this.attributes = attributes;
    this.validateFn = validateFn;
  }

  /** Compiles a category's schema; throws SchemaError with one sentence when the schema itself is unusable. */
  static compile(categoryCode: string, raw: unknown): AttributeSchema {
    const schema = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Record<string, any>;
    if (!schema || typeof schema !== 'object' || schema.type !== 'object') throw new SchemaError(`category '${categoryCode}': attribute schema must be {"type":"object", ...}`);
    const props: Record<string, any> = schema.properties ?? {};
    const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
    const attributes = new Map<string, AttributeDef>();
    const lower = new Set<string>();
    for (const [name, p] of Object.entries(props)) {
      if (!ATTRIBUTE_NAME.test(name)) throw new SchemaError(`category '${categoryCode}': attribute name '${name}' must match ${ATTRIBUTE_NAME}`);
      // Column names are case-insensitive in MySQL: ramGb and ramgb would share a generated column.
      if (lower.has(name.toLowerCase())) throw new SchemaError(`category '${categoryCode}': attribute names '${name}' differ only by case`);
      lower.add(name.toLowerCase());
      const k = kindOf(name, p);
      const filterable = p['x-filterable'] === true;
      if (filterable && k.kind === 'string' && !(k.maxLength && k.maxLength <= MAX_INDEXED_STRING)) {
        throw new SchemaError(`category '${categoryCode}': filterable string '${name}' needs maxLength <= ${MAX_INDEXED_STRING} (it becomes an indexed VARCHAR)`);
      }
      attributes.set(name, { name, ...k, filterable, required: required.has(name), unit: typeof p['x-unit'] === 'string' ? p['x-unit'] : undefined });
    }
    // Unknown fields are refused whenever the category declares its fields; a schema without properties is free-form.
    const effective = schema.properties && schema.additionalProperties === undefined ? { ...schema, additionalProperties: false } : schema;
    let validateFn: ValidateFunction;
    try {
      validateFn = makeAjv().compile(effective);
    } catch (e) {
      throw new SchemaError(`category '${categoryCode}': invalid attribute schema: ${(e as Error).message}`);
    }
    return new AttributeSchema(categoryCode, schema, attributes, validateFn);
  }

  /** Every problem of a document, one entry per field, each with its reasons. Empty when valid. */
  validate(doc: unknown): AttributeProblem[] {
    if (this.validateFn(doc)) return [];
    const byField = new Map<string, string[]>();
    for (const e of this.validateFn.errors ?? []) {
      const { field, problem } = this.describe(e);
      byField.set(field, [...(byField.get(field) ?? []), problem]);
    }
    return [...byField].map(([field, problems]) => ({ field, problems: [...new Set(problems)] }));
  }

  filterable(): AttributeDef[] {
    return [...this.attributes.values()].filter((a) => a.filterable);
  }

  private describe(e: ErrorObject): { field: string; problem: string } {
    // instancePath '/allergens/1' -> 'allergens[1]'; errors at the root name the property they are about.
    const parts = e.instancePath.split('/').filter(Boolean);
    const path = parts.length ? parts[0] + parts.slice(1).map((s) => `[${s}]`).join('') : '';
    const unit = parts.length ? this.attributes.get(parts[0])?.unit : undefined;
    switch (e.keyword) {
      case 'additionalProperties': {
        const known = [...this.attributes.keys()].join(', ');
        return { field: String(e.params.additionalProperty), problem: `unknown attribute (declared: ${known || 'none'})` };
      }
      case 'required':
        return { field: String(e.params.missingProperty), problem: 'is required' };
      case 'enum':
        return { field: path, problem: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` };
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        return { field: path, problem: `${e.message}${unit ? ` ${unit}` : ''}` };
      default:
        return { field: path || '(document)', problem: e.message ?? e.keyword };
    }
  }
}
