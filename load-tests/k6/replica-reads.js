// k6 run -e BASE_URL=http://localhost:3000 load-tests/k6/replica-reads.js
// Measures whichever mode the running shop-api is in (start it with CACHE_MODE=off and DB_REPLICA_URLS
// empty / one / two URLs, database nodes capped with `npm run stack -- cap 0.1`); seed the products with
// `npm run bench -- replica-reads --modes primary-only --duration 1s` first.
import scenario from '../scenarios/http/replica-reads.js';
import { k6Options, k6Default } from './lib.js';

export const options = k6Options(scenario);
export default k6Default(scenario);
