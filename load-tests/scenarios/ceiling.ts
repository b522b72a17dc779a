// Scenario `ceiling`: how fast can this box answer HTTP at all? A bare Fastify handler returning ~1 KB of
// JSON vs shop-api's cheapest endpoint (liveness: Nest + Fastify + hooks, no I/O). Every other benchmark
// is read against these two numbers. The request is http/ceiling.js, which k6 runs too (load-tests/k6).
import type { Scenario } from '../runner/bench.js';
import http from './http/ceiling.js';

export default {
  ...http,
  description: 'bare Fastify (~1 KB JSON) vs shop-api GET /health/live',
  modes: {
    bare: { target: 'bare' },
    nest: { target: 'api' },
  },
  ratios: { nest_vs_bare: ['nest', 'bare'] },
  schema: true, // shop-api connects to its databases at start-up, even for a route that never uses them
} satisfies Scenario;
