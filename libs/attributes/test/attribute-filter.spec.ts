import { describe, expect, it } from '@jest/globals';
import { ApiError } from '#libs/core';
import { addColumnSql, AttributeFilter, AttributeSchema, CATEGORY_DEFINITIONS, SchemaError } from '#libs/attributes';

const laptop = AttributeSchema.compile('laptop', CATEGORY_DEFINITIONS.find((c) => c.code === 'laptop')!.schema);
const food = AttributeSchema.compile('food', CATEGORY_DEFINITIONS.find((c) => c.code === 'food')!.schema);
const filter = (s: AttributeSchema, q: Record<string, unknown>) => new AttributeFilter(s, 7, new Set(s.filterable().map((a) => a.name))).compile(q, ['category']);
const status = (fn: () => unknown) => {
  try {
    fn();
    return 200;
  } catch (e) {
    return e instanceof ApiError ? e.status : 500;
  }
};

describe('AttributeSchema', () => {
  it('when a seeded schema compiles, then every attribute has its kind, unit and filterable flag', () => {
    expect(food.attributes.get('allergens')).toMatchObject({ kind: 'enum-array', filterable: true });
    expect(food.attributes.get('weightG')).toMatchObject({ kind: 'integer', unit: 'g', required: true });
    expect(food.attributes.get('expiryDate')).toMatchObject({ kind: 'date' });
    expect(laptop.attributes.get('screenInch')).toMatchObject({ kind: 'number', filterable: false, unit: 'inch' });
  });

  it('when a schema declares unsafe names or an unbounded filterable string, then it does not compile', () => {
    const bad = [
      { type: 'object', properties: { "a'b": { type: 'string' } } },
      { type: 'object', properties: { 'a.b': { type: 'integer' } } },
      { type: 'object', properties: { ramGb: { type: 'integer' }, ramgb: { type: 'integer' } } },
      { type: 'object', properties: { note: { type: 'string', 'x-filterable': true } } },
      { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' } } } },
      { type: 'array' },
    ];
    for (const s of bad) expect(() => AttributeSchema.compile('x', s)).toThrow(SchemaError);
  });

  it('when a document is valid, then no problems; when not, then one entry per field', () => {
    expect(laptop.validate({ cpu: 'M3', ramGb: 16, storageGb: 512 })).toEqual([]);
    expect(laptop.validate({ cpu: 'M3', ramGb: 16, storageGb: 512, gpu: 'x' })).toEqual([{ field: 'gpu', problems: [expect.stringMatching(/unknown attribute/)] }]);
  });
});

describe('AttributeFilter', () => {
  it('when filters are valid, then SQL names only generated columns and every value is a parameter', () => {
    const f = filter(laptop, { category: 'laptop', 'attr.ramGb[gte]': '16', 'attr.cpu[in]': 'M3,M4', 'attr.storageGb[between]': '256,1024' });
    expect(f.where).toEqual(['p.`attr_7_ramGb` >= ?', 'p.`attr_7_cpu` IN (?, ?)', 'p.`attr_7_storageGb` BETWEEN ? AND ?']);
    expect(f.params).toEqual([16, 'M3', 'M4', 256, 1024]);
    const g = filter(food, { 'attr.allergens[contains]': 'milk', 'attr.expiryDate[lte]': '2030-01-01' });
    expect(g.where[0]).toMatch(/^EXISTS \(SELECT 1 FROM product_attribute_values v WHERE v.category_id = \? AND v.attribute = \? AND v.value = \? AND v.product_id = p.id\)$/);
    expect(g.params).toEqual([7, 'allergens', 'milk', '2030-01-01']);
  });

  it('when names, operators or values are hostile, then 400 and no client text reaches the SQL', () => {
    const hostile = ["'", '"', '`', '$', '$.cpu', '..', '/**/', '--', ';', ') OR (1=1', '\\', '\u0000', 'x'.repeat(10000)];
    for (const h of hostile) {
      expect(status(() => filter(laptop, { [`attr.${h}`]: '1' }))).toBe(400);
      expect(status(() => filter(laptop, { [`attr.ramGb[${h}]`]: '1' }))).toBe(400);
      expect(status(() => filter(laptop, { 'attr.ramGb[gte]': h }))).toBe(400);
      expect(status(() => filter(laptop, { 'attr.cpu': h }))).toBe(400);
      expect(status(() => filter(laptop, { [h]: 'M3' }))).toBe(400);
    }
  });

  it('when an attribute is filterable but its index is not ready, then 400 (never a full scan)', () => {
    expect(status(() => new AttributeFilter(laptop, 7, new Set()).compile({ 'attr.ramGb': '16' }, []))).toBe(400);
  });

  it('when a generated column is declared, then its DDL comes from the id and the declared name only', () => {
    expect(addColumnSql(7, laptop.attributes.get('ramGb')!)).toBe(
      "ALTER TABLE products ADD COLUMN `attr_7_ramGb` BIGINT AS (CASE WHEN category_id = 7 THEN CAST(JSON_UNQUOTE(JSON_EXTRACT(attributes, '$.ramGb')) AS SIGNED) END) VIRTUAL, ALGORITHM=INSTANT",
    );
    expect(() => addColumnSql(7, { ...laptop.attributes.get('ramGb')!, name: "x') OR 1" })).toThrow();
  });
});
