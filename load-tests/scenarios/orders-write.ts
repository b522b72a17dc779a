// Scenario `orders-write`: POST /orders throughput with 1 vs 2 order shards, the database nodes CPU-capped
// equally (0.1 CPU each) by the native stack so the databases, not this 2-core box, are the bottleneck.
// Two pairs of modes:
//   one_shard / two_shards                   caps the shards only: what adding a shard buys for the order write
//   one_shard_catalog_capped / two_shards_…  caps the catalog primary too: every order also reserves stock
//                                            there (a conditional UPDATE), and that single node caps the scaling
// Each mode runs shop-api against its own catalog database (bucket map: all buckets on shard 0, or
// split over shards 0 and 1) and the same bench shard database. The request is http/orders-write.js, which k6
// runs too. Private stack: STACK_DIR + STACK_PORT_* are honoured (see docker/local/stack.mjs).
import { createHmac } from 'node:crypto';
import { loadConfig } from '#libs/core';
import { bucketOf, DbNodes, migrateAll } from '#libs/db';
import type { DemoPreset, Scenario } from '../runner/bench.js';
import http, { PRODUCTS } from './http/orders-write.js';
import { localAdminUrl, ratioText, stackPort } from './support.js';

const SECRET = 'orders-write-bench-secret-0123456789abcdef';
const USERS = 5000;

function env(shards: number) {
  const primary = stackPort('PRIMARY', 3307);
  const shardUrls = [localAdminUrl(stackPort('SHARD_0', 3310), 'mallscale_bench_ow'), localAdminUrl(stackPort('SHARD_1', 3311), 'mallscale_bench_ow')].slice(0, shards);
  return {
    DB_PRIMARY_URL: localAdminUrl(primary, `mallscale_bench_ow${shards}`),
    DB_REPLICA_URLS: '',
    DB_SHARD_URLS: shardUrls.join(','),
    JWT_SECRET: SECRET,
    PARTITION_MAINTENANCE_INTERVAL_S: '0',
    CACHE_PREFIX: `bench-ow${shards}:`,
    DB_POOL_SIZE: '32',
  };
}

export default {
  ...http,
  description: 'POST /orders (stock reservation on the catalog + order on the user\'s shard), 1 vs 2 shards, DB nodes capped at 0.1 CPU',
  modes: {
    one_shard: { target: 'api', env: env(1), dbCpu: 0.1, dbCpuNodes: ['shard-0', 'shard-1'] },
    two_shards: { target: 'api', env: env(2), dbCpu: 0.1, dbCpuNodes: ['shard-0', 'shard-1'] },
    one_shard_catalog_capped: { target: 'api', env: env(1), dbCpu: 0.1, dbCpuNodes: ['primary', 'shard-0', 'shard-1'] },
    two_shards_catalog_capped: { target: 'api', env: env(2), dbCpu: 0.1, dbCpuNodes: ['primary', 'shard-0', 'shard-1'] },
    // The bucket fence's price (two primary-key reads per write, one of them locking): the same as two_shards
    // with the fence switched off (SHARD_FENCE_CHECK=off, a measurement switch refused in production).
    two_shards_unfenced: { target: 'api', env: { ...env(2), SHARD_FENCE_CHECK: 'off' }, dbCpu: 0.1, dbCpuNodes: ['shard-0', 'shard-1'] },
  },
  ratios: {
    two_vs_one_shard: ['two_shards', 'one_shard'],
    two_vs_one_shard_catalog_capped: ['two_shards_catalog_capped', 'one_shard_catalog_capped'],
    fenced_vs_unfenced: ['two_shards', 'two_shards_unfenced'],
  },

  async setup(ctx) {
    for (const shards of [1, 2]) {
      const config = loadConfig({ ...env(shards), DB_REPLICA_URLS: '' });
      await migrateAll(config, () => undefined);
      const nodes = await DbNodes.connect({ ...config.db, poolSize: 2 });
      try {
        const ds = nodes.primary.ds;
        await ds.query(`INSERT IGNORE INTO categories (id, code, name, attribute_schema) VALUES (1, 'bench', 'Bench', '{"type":"object"}')`);
        const [{ n }] = await ds.query('SELECT COUNT(*) AS n FROM products');
        if (Number(n) < PRODUCTS) {
          const rows = Array.from({ length: PRODUCTS }, (_, i) => `(${i + 1}, 1, 'bench product ${i + 1}', ${100 + i}, 1000000000, '{}')`);
          await ds.query(`INSERT IGNORE INTO products (id, category_id, name, price_cents, stock, attributes) VALUES ${rows.join(',')}`);
        }
        await ds.query('UPDATE products SET stock = 1000000000');
        // The API takes a token's role from its user row (and checks its token_version): the bench users must exist.
        for (let i = 0; i < USERS; i += 1000) {
          const rows = Array.from({ length: Math.min(1000, USERS - i) }, (_, k) => `(${i + k + 1}, 'bench-ow-${i + k + 1}@example.test', '!', 'user', 0)`);
          await ds.query(`INSERT IGNORE INTO users (id, email, password_hash, role, token_version) VALUES ${rows.join(',')}`);
        }
      } finally {
        await nodes.close();
      }
    }
    // Bearer tokens minted with the bench secret (HS256), as TokenService.issueAccess signs them (issuer, audience, type, version).
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const { issuer, audience } = loadConfig({ ...env(1), DB_REPLICA_URLS: '' }).auth;
    const tokens = Array.from({ length: USERS }, (_, i) => {
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(i + 1), typ: 'access', ver: 0, iat: now, exp: now + 86400, iss: issuer, aud: audience })}`;
      return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
    });
    ctx.log(`orders-write: ${USERS} users, ${PRODUCTS} products per catalog, shard db mallscale_bench_ow`);
    return { tokens };
  },
} satisfies Scenario<{ tokens: string[] }>;

// `npm run demo -- q3b` (scripts/demo.mjs): the short run at the top of docs/q3b-sharding-cautions.md: the four
// modes, 2 s warm-up + 4 s each, plus how evenly 1M sequential user ids hash over the two shards.
export const demo = {
  opts: { duration: '4s', warmup: '2s', modes: 'one_shard,two_shards,one_shard_catalog_capped,two_shards_catalog_capped' },
  headline(r) {
    const counts = [0, 0];
    for (let u = 1; u <= 1_000_000; u++) counts[bucketOf(u) % 2]++;
    const dev = Math.round((Math.abs(counts[0] - 500_000) / 500_000) * 10000) / 100;
    const ratio = (k: string) => ratioText(r, k);
    return `**two shards vs one: ${ratio('two_vs_one_shard')}** order writes/s with only the shards capped, **${ratio('two_vs_one_shard_catalog_capped')}** when the catalog primary (stock reservation, every order) is capped too: a second shard adds write capacity only until the one catalog node is the ceiling. 1M sequential user ids → 1,024 buckets → 2 shards: ${counts[0]} / ${counts[1]} (${dev} % off the mean); hashing spreads users, not one heavy user.`;
  },
} satisfies DemoPreset;
