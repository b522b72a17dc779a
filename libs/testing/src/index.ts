export * from './test-env.js';
export * from './native-stack.js';
export * from './api.js';
