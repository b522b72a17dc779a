// The HTTP load of scenario `hot-products` (load-tests/scenarios/hot-products.ts), plain JS so k6 runs the same
// definition (load-tests/k6/hot-products.js): GET /products/:id over N products whose popularity follows
// Zipf(s = 1.0) (rank r is read with probability ∝ 1/r); modes bare and bare_again GET the bare server's /.
const env = typeof process !== 'undefined' ? process.env : typeof __ENV !== 'undefined' ? __ENV : {};
export const N = Number(env.BENCH_HOT_PRODUCTS || 100000);
// Products of this benchmark have explicit ids BASE+1 .. BASE+N (category bench-hot), so k6 — which gets
// no setup data — can address them too.
export const BASE = 1000000000;

// Zipf(s=1) over ranks 1..N: cumulative weights, sampled by binary search. Rank → product scattered over
// the id range (multiplicative permutation), so the hot products are not neighbours in the B-tree.
let cdf = null;
function zipfCdf() {
  if (cdf) return cdf;
  cdf = new Float64Array(N);
  let sum = 0;
  for (let r = 1; r <= N; r++) cdf[r - 1] = sum += 1 / r;
  for (let i = 0; i < N; i++) cdf[i] /= sum;
  return cdf;
}
/** The 0-based Zipf rank a uniform draw u in [0, 1) falls on. */
export function zipfRank(u) {
  const c = zipfCdf();
  let lo = 0;
  let hi = N - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (c[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo; // 0-based rank
}
/** The product id of a 0-based rank. 7919 is prime, N = 100000: a bijection. */
export const productId = (rank) => String(BASE + 1 + ((rank * 7919) % N));

export default {
  name: 'hot-products',
  duration: '15s',
  warmup: '15s', // the Zipf tail is long: a cache needs a real warm-up to reach its steady state
  connections: 64,
  request(rand, _data, mode) {
    if (mode === 'bare' || mode === 'bare_again') return { method: 'GET', path: '/' };
    return { method: 'GET', path: `/products/${productId(zipfRank(rand()))}`, name: 'GET /products/:id' };
  },
};
