// The HTTP load of scenario `ceiling` (load-tests/scenarios/ceiling.ts), plain JS so k6 runs the same
// definition (load-tests/k6/ceiling.js): the bare server's / vs shop-api's cheapest route.
export default {
  name: 'ceiling',
  duration: '10s',
  connections: 64,
  request(_rand, _data, mode) {
    return { method: 'GET', path: mode === 'bare' ? '/' : '/health/live' };
  },
};
