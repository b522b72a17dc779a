// k6 run -e BASE_URL=http://localhost:3000 load-tests/k6/hot-products.js
// Measures whichever mode the running shop-api is in: start it with CACHE_MODE=off|l2|l1l2 and
// DB_REPLICA_URLS= (one database server), cap the database with `npm run stack -- cap 0.1`, and seed the
// 100k bench-hot products once with `npm run bench -- hot-products --modes off --duration 1s`.
// The edge tier: `npm run stack -- up --edge` (Varnish on 6081 in front of shop-api on 3000, started with
// EDGE_PURGE_URLS=http://127.0.0.1:6081), then BASE_URL=http://localhost:6081. The peer baseline: start shop-api
// with CACHE_MODE=off BENCH_PEER_CACHE=nest-cache-manager (benchmark only). Never run here (no k6 on this box).
// Product ids are fixed (1000000001..1000100000), so k6 needs no setup data; Zipf(s=1) as in the runner.
import scenario from '../scenarios/http/hot-products.js';
import { k6Options, k6Default } from './lib.js';

export const options = k6Options(scenario);
export default k6Default(scenario);
