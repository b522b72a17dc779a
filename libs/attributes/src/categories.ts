/**
 * The seeded categories and their attribute schemas (JSON Schema + x-filterable / x-unit). Food, laptops
 * and apparel show every supported type: date, enum, integer with a unit, array of enum, number, boolean,
 * bounded free string. `npm run seed` inserts them and promotes every x-filterable attribute.
 */
export const CATEGORY_DEFINITIONS: { code: string; name: string; schema: Record<string, any> }[] = [
  {
    code: 'food',
    name: 'Food',
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['expiryDate', 'storage', 'weightG'],
      properties: {
        expiryDate: { type: 'string', format: 'date', 'x-filterable': true },
        storage: { type: 'string', enum: ['room', 'chilled', 'frozen'], 'x-filterable': true },
        weightG: { type: 'integer', minimum: 1, 'x-unit': 'g', 'x-filterable': true },
        allergens: { type: 'array', items: { type: 'string', enum: ['milk', 'egg', 'peanut', 'wheat', 'soy', 'fish', 'shellfish', 'tree-nut'] }, uniqueItems: true, 'x-filterable': true },
      },
    },
  },
  {
    code: 'laptop',
    name: 'Laptops',
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['cpu', 'ramGb', 'storageGb'],
      properties: {
        cpu: { type: 'string', enum: ['M3', 'M4', 'i5', 'i7', 'Ryzen 5', 'Ryzen 7'], 'x-filterable': true },
        ramGb: { type: 'integer', minimum: 1, maximum: 512, 'x-unit': 'GB', 'x-filterable': true },
        storageGb: { type: 'integer', minimum: 1, 'x-unit': 'GB', 'x-filterable': true },
        screenInch: { type: 'number', minimum: 7, maximum: 21, 'x-unit': 'inch' },
      },
    },
  },
  {
    code: 'apparel',
    name: 'Apparel',
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['size', 'color'],
      properties: {
        size: { type: 'string', enum: ['XS', 'S', 'M', 'L', 'XL'], 'x-filterable': true },
        color: { type: 'string', maxLength: 30, 'x-filterable': true },
        material: { type: 'string', maxLength: 60 },
        washable: { type: 'boolean' },
      },
    },
  },
];
