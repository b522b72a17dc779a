// The launcher's command line: `npm run stack -- <command>` (node docker/local/stack.mjs <command>).
// Every command is one entry of COMMANDS (its usage and what it runs); the usage line is made from them.
import fs from 'node:fs';
import path from 'node:path';
import { STACK_DIR, fail } from './env.mjs';
import { detectCgroup } from './caps.mjs';
import { edge, startEdge, stopEdge } from './edge.mjs';
import { addShard, migrateAddedShard, shardUrls } from './shards.mjs';
import { failover, promote } from './replication.mjs';
import { sentinelStatus, sentinelTopology, upSentinel } from './sentinel.mjs';
import { printCapMechanism, printTable } from './status.mjs';
import { down, killNode, reset, setCpuCap, startNode, status, up } from './stack.mjs';

const nodeArg = (cmd, args) => args[0] ?? fail(`usage: stack.mjs ${cmd} <node>`);

/** Each command: { usage, run(args, cmd) -> exit code }. */
const COMMANDS = {
  up: {
    usage: 'up [--redis sentinel] [--edge] [--catalog galera]',
    async run(args) {
      const t0 = Date.now();
      const redis = args.includes('--redis') ? args[args.indexOf('--redis') + 1] : 'single';
      if (!['single', 'sentinel'].includes(redis)) fail(`--redis must be single or sentinel (got "${redis}")`);
      await up({ edge: args.includes('--edge') });
      if (redis === 'sentinel') printTable(await upSentinel());
      if (args.includes('--catalog')) return (await import('./galera.mjs')).galeraCli(args[args.indexOf('--catalog') + 1], { printTable, secs: () => secs(t0) });
      console.log(`stack up (${secs(t0)}) in ${STACK_DIR}`);
      return 0;
    },
  },
  down: { usage: 'down', async run() { const t0 = Date.now(); await down(); console.log(`stack down (${secs(t0)})`); return 0; } },
  status: {
    usage: 'status',
    async run() {
      const rows = await status();
      const ha = fs.existsSync(sentinelTopology().dir) ? await sentinelStatus() : [];
      const galera = fs.existsSync(path.join(STACK_DIR, 'galera')) ? await (await import('./galera.mjs')).galeraStatus() : [];
      printTable([...rows, ...ha, ...galera]);
      printCapMechanism(detectCgroup());
      // The optional groups (sentinel, Galera) count only while they run: a group once started and since stopped is not a broken stack.
      const running = (group) => (group.some((r) => r.pid) ? group : []);
      return [...rows, ...running(ha), ...running(galera)].every((r) => r.state === 'up') ? 0 : 1;
    },
  },
  reset: { usage: 'reset', async run() { const t0 = Date.now(); await reset(); console.log(`stack reset: ${STACK_DIR} deleted (${secs(t0)})`); return 0; } },
  kill: {
    usage: 'kill <node>',
    async run(args, cmd) {
      if (args[0]?.startsWith('galera-')) { console.log(`${args[0]}: killed pid ${await (await import('./galera.mjs')).killGaleraNode(args[0])}`); return 0; }
      if (args[0] === 'edge') { await stopEdge(); console.log('edge: stopped'); return 0; }
      const pid = await killNode(nodeArg(cmd, args));
      console.log(pid ? `${args[0]}: killed pid ${pid}` : `${args[0]}: not running`);
      return 0;
    },
  },
  start: {
    usage: 'start <node>',
    async run(args, cmd) {
      if (args[0]?.startsWith('galera-')) { printTable([await (await import('./galera.mjs')).startGaleraNode(args[0])]); return 0; }
      if (args[0] === 'edge') await startEdge(edge); else await startNode(nodeArg(cmd, args));
      printTable(await status());
      return 0;
    },
  },
  cap: {
    usage: 'cap <cpu|off> [node...]',
    async run(args) {
      if (args[0] == null) fail('usage: stack.mjs cap <cpu|off> [node...]');
      const r = await setCpuCap(args[0], args.slice(1));
      printTable(await status());
      printCapMechanism(r);
      return r.applied ? 0 : 1;
    },
  },
  'add-shard': {
    usage: 'add-shard',
    async run() {
      const row = await addShard();
      printTable(await status());
      if (row.state === 'up') {
        const migrated = await migrateAddedShard();
        if (migrated === null) console.log('the catalog has no bucket map yet: run `npm run migrate` (two shards) first, then add-shard again');
        else if (migrated !== 0) return 1;
      } else console.log('the catalog has no bucket map yet: run `npm run migrate` (two shards) first, then add-shard again');
      console.log(`${row.name} ${row.state} on :${row.port}. Give the app three shards, then move buckets:\n  DB_SHARD_URLS=${shardUrls()}\n  npm run shards -- rebalance --to-shards 3 --dry-run`);
      return row.state === 'up' ? 0 : 1;
    },
  },
  promote: { usage: 'promote <replica>', run: (args, cmd) => changePrimary(() => promote(nodeArg(cmd, args))) },
  failover: { usage: 'failover', run: () => changePrimary(() => failover()) },
};

const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

async function changePrimary(change) {
  const r = await change();
  console.log(JSON.stringify(r));
  printTable(await status());
  return Object.values(r.repointed).every((v) => v === 'ok' || v.startsWith('down')) ? 0 : 1;
}

export const usage = () => `usage: node docker/local/stack.mjs ${Object.values(COMMANDS).map((c) => c.usage).join('|')}`;

/** Run one command line; resolves to the process exit code. */
export async function main([cmd, ...args]) {
  const command = Object.hasOwn(COMMANDS, cmd ?? '') ? COMMANDS[cmd] : null;
  if (command) return command.run(args, cmd);
  console.error(usage());
  return cmd ? 1 : 0;
}
