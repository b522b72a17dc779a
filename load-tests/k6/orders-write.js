// k6 run -e BASE_URL=http://localhost:3000 -e ORDERS_TOKEN=<a user's bearer token> load-tests/k6/orders-write.js
// Measures whichever topology the running shop-api has (1 or 2 shards); the Node runner compares both.
import scenario from '../scenarios/http/orders-write.js';
import { k6Options, k6Default } from './lib.js';

export const options = k6Options(scenario);
export default k6Default(scenario);
