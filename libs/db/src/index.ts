export * from './dialect.js';
export * from './db-nodes.js';
export * from './migrator.js';
export * from './order-id.js';
export * from './order-shard-router.js';
export * from './partition-maintainer.js';
export * from './migrate-all.js';
