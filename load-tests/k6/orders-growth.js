// k6 run -e BASE_URL=http://localhost:3000 -e ORDERS_TOKEN=<token> -e FROM=2026-01-01 -e TO=2026-02-01 load-tests/k6/orders-growth.js
// The HTTP side of orders-growth: a user's partition-pruned month of orders (GET /me/orders). The
// database-level comparisons (retention, month scans, inserts) run in the Node runner only.
import scenario from '../scenarios/http/orders-growth.js';
import { k6Options, k6Default } from './lib.js';

export const options = k6Options(scenario);
export default k6Default(scenario);
