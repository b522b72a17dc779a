export * from './circuit-breaker.js';
export * from './guarded-redis.js';
export * from './invalidation-bus.js';
export * from './cache-aside.js';
export * from './product-cache.js';
export * from './edge-purger.js';
