// The HTTP side of scenario `orders-growth` (load-tests/scenarios/orders-growth.ts), plain JS so k6 runs the
// same definition (load-tests/k6/orders-growth.js): a signed-in user's partition-pruned month of orders
// (GET /me/orders). The database-level comparisons (retention, month scans, inserts) run in the Node runner only.
export default {
  name: 'orders-growth',
  duration: '30s',
  connections: 16,
  request() {
    const env = typeof __ENV !== 'undefined' ? __ENV : {};
    return { method: 'GET', path: `/me/orders?from=${env.FROM || '2026-01-01'}&to=${env.TO || '2026-02-01'}&limit=20`, headers: { authorization: `Bearer ${env.ORDERS_TOKEN || ''}` } };
  },
};
