export * from './test-env.js';
export * from './native-stack.js';
export * from './api.js';
export * from './orders.js';
export * from './replicas.js';
export * from './synthetic-video.js';
export * from './zip.js';
export * from './server-sql.js';
