// The HTTP load of scenario `replica-reads` (load-tests/scenarios/replica-reads.ts), plain JS so k6 runs the
// same definition (load-tests/k6/replica-reads.js): GET /products/:id over the seeded products.
export const PRODUCTS = 2000;

export default {
  name: 'replica-reads',
  duration: '15s',
  warmup: '5s',
  connections: 64,
  request(rand, data) {
    const ids = data && data.ids && data.ids.length ? data.ids : null;
    // k6 has no setup data: ids are then drawn from 1..PRODUCTS (seed the database with the Node runner first).
    const id = ids ? ids[Math.floor(rand() * ids.length)] : String(1 + Math.floor(rand() * PRODUCTS));
    return { method: 'GET', path: `/products/${id}`, name: 'GET /products/:id' };
  },
};
