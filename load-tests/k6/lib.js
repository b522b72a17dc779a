// k6 side of the shared request definitions (load-tests/scenarios/http/<name>.js, which the Node runner's
// TypeScript scenario load-tests/scenarios/<name>.ts spreads). A k6 script per scenario is four lines:
//   import scenario from '../scenarios/http/<name>.js';
//   import { k6Options, k6Default } from './lib.js';
//   export const options = k6Options(scenario);
//   export default k6Default(scenario);
// k6 only sends requests to BASE_URL: it measures whichever mode the running shop-api is in.
import http from 'k6/http';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');

// k6 options for a scenario: `connections` virtual users for `duration`, failing the run when 1% or
// more of the requests fail. --vus / --duration on the command line still override these.
export function k6Options(scenario, extra) {
  return Object.assign(
    {
      vus: scenario.connections,
      duration: scenario.duration,
      thresholds: { http_req_failed: ['rate<0.01'] },
      discardResponseBodies: true, // like the Node runner: count responses, do not keep them
      summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
    },
    extra,
  );
}

function hasHeader(headers, name) {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

// The default function: one request per iteration, built by the scenario. The scenario's setup()
// is for the Node runner only, so in k6 `data` is always {}.
export function k6Default(scenario) {
  return function () {
    const req = scenario.request(Math.random, {});
    const headers = Object.assign({}, req.headers);
    let body = req.body === undefined ? null : req.body;
    if (body !== null && typeof body !== 'string') {
      body = JSON.stringify(body);
      if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json';
    }
    http.request(req.method || 'GET', BASE_URL + req.path, body, {
      headers,
      // One metric series per scenario, not per URL (paths carry random ids).
      tags: { name: req.name || scenario.name },
    });
  };
}
