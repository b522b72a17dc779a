export * from './config.js';
export * from './errors.js';
export * from './repo-root.js';
export * from './redis.js';
export * from './metrics.js';
export * from './logger.js';
export * from './background-loop.js';
export * from './timeout.js';
