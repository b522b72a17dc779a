// Scenario `ceiling`: how fast can this box answer HTTP at all? A bare Fastify handler returning ~1 KB of
// JSON vs shop-api's cheapest endpoint (liveness: Nest + Fastify + hooks, no I/O). Every other benchmark
// is read against these two numbers. Plain ESM without imports: read by k6 (load-tests/k6) and by the
// in-repo runner (npm run bench -- ceiling).
export default {
  name: 'ceiling',
  description: 'bare Fastify (~1 KB JSON) vs shop-api GET /health/live',
  duration: '10s',
  connections: 64,
  modes: {
    bare: { target: 'bare' },
    nest: { target: 'api' },
  },
  ratios: { nest_vs_bare: ['nest', 'bare'] },
  schema: true, // shop-api connects to its databases at start-up, even for a route that never uses them
  request(_rand, _data, mode) {
    return { method: 'GET', path: mode === 'bare' ? '/' : '/health/live' };
  },
};
