// The HTTP load of scenario `orders-write` (load-tests/scenarios/orders-write.ts), plain JS so k6 runs the
// same definition (load-tests/k6/orders-write.js): POST /orders of one seeded product, as one of the bench users.
export const PRODUCTS = 500;
let seq = 0;

export default {
  name: 'orders-write',
  duration: '10s',
  warmup: '3s',
  connections: 32,
  request(rand, data, mode) {
    // k6 (data = {}): one token from the environment, products 1..PRODUCTS of the seeded catalog.
    const tokens = data && data.tokens ? data.tokens : [typeof __ENV !== 'undefined' ? __ENV.ORDERS_TOKEN : ''];
    const token = tokens[Math.floor(rand() * tokens.length)];
    seq++;
    return {
      method: 'POST',
      path: '/orders',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': `${mode || 'k6'}-${seq}-${Math.floor(rand() * 1e9)}`, 'content-type': 'application/json' },
      body: { items: [{ productId: String(1 + Math.floor(rand() * PRODUCTS)), quantity: 1 }] },
    };
  },
};
