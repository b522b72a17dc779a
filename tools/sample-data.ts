/**
 * The seeded generator of sample data, one copy for `npm run seed` and the benchmarks: a small fast PRNG
 * (mulberry32: the same seed gives the same products on every machine) and the attribute values of each
 * seeded category, valid against its JSON Schema in libs/attributes (CATEGORY_DEFINITIONS).
 */

/** mulberry32: 32-bit state, uniform in [0, 1). Not for secrets. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Attributes of one product of `category` (food, laptop, fashion). `dayZeroMs`: the first possible food
 * expiry date — now for a demo catalog, a fixed day for a benchmark whose data must not move with the clock.
 */
export function sampleAttributes(category: string, r: () => number, dayZeroMs: number): Record<string, unknown> {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  if (category === 'food') {
    const expiryDate = new Date(dayZeroMs + Math.floor(r() * 365) * 86400000).toISOString().slice(0, 10);
    return { expiryDate, storage: pick(['room', 'chilled', 'frozen']), weightG: 50 + Math.floor(r() * 2000), allergens: ['milk', 'egg', 'peanut', 'wheat', 'soy'].filter(() => r() < 0.25) };
  }
  if (category === 'laptop') {
    return { cpu: pick(['M3', 'M4', 'i5', 'i7', 'Ryzen 5', 'Ryzen 7']), ramGb: pick([8, 16, 32, 64]), storageGb: pick([256, 512, 1024, 2048]), screenInch: pick([13.3, 14, 15.6, 16]) };
  }
  return { size: pick(['XS', 'S', 'M', 'L', 'XL']), color: pick(['black', 'white', 'navy', 'red', 'green']), material: pick(['cotton', 'wool', 'linen']), washable: r() < 0.8 };
}
