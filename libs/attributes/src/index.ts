export * from './attribute-schema.js';
export * from './attribute-columns.js';
export * from './attribute-filter.js';
export * from './attribute-promoter.js';
export * from './categories.js';
export * from './eav-comparison.js';
