#!/usr/bin/env node
// `npm run lab -- <experiment> [options]`: the labs that answer design questions with measurements.
//   multi-region   replication vs Galera clustering vs geo-sharding across 3 simulated regions (docs/q3a-multi-region.md)
const [name, ...args] = process.argv.slice(2);
const labs = { 'multi-region': () => import('./multi-region.mjs') };
if (!labs[name]) {
  console.error(`usage: npm run lab -- ${Object.keys(labs).join('|')} [options]`);
  process.exit(name ? 1 : 0);
}
const { main } = await labs[name]();
main(args).then((code) => process.exit(code), (e) => { console.error(`lab: ${e.message}`); process.exit(1); });
