// Talking to the servers as their administrator.
//   SQL: the server's own command-line client as root over the node's unix socket (root has no password and no
//   TCP account; a fresh datadir has nothing else), tab-separated output.
//   Redis: ioredis, one short connection per command. It is a dependency of the app anyway, so the launcher
//   parses RESP with the library the app trusts rather than by hand; redis-cli would be one process per command
//   and is not always installed with redis-server. No retries and no offline queue: a node that does not
//   answer is an answer (down), not something to wait for.
import net from 'node:net';
import { Redis } from 'ioredis';
import { run } from './env.mjs';
import { binaries } from './install.mjs';

export function tcpProbe(port, timeout = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeout, () => done(false));
    s.on('connect', () => done(true)).on('error', () => done(false));
  });
}

/** Run SQL as root over the node's unix socket; returns the raw tab-separated output. */
export async function sql(n, query, { vertical = false, timeout = 15_000 } = {}) {
  const args = ['--no-defaults', '-uroot', `--socket=${n.socket}`, '--batch', ...(vertical ? ['-E'] : ['--skip-column-names']), '-e', query];
  const { stdout } = await run(binaries().client, args, { timeout });
  return stdout.trim();
}

/** One Redis command (`redis(n, 'CONFIG', 'GET', 'maxmemory-policy')`) on a node or sentinel; its reply. */
export async function redis(n, ...args) {
  const client = new Redis({
    host: '127.0.0.1', port: n.port, lazyConnect: true, connectTimeout: 2000, commandTimeout: 2000,
    maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, enableReadyCheck: false, disableClientInfo: true,
  });
  client.on('error', () => {}); // the failed command carries the error
  try {
    await client.connect();
    return await client.call(...args);
  } finally {
    client.disconnect();
  }
}

// mariadbd is asked over its socket (it opens the TCP port before the socket); a bare TCP probe
// would log an "Aborted connection ... unauthenticated" warning on every status call.
export async function answers(n) {
  try {
    return n.kind === 'redis' ? (await redis(n, 'PING')) === 'PONG' : (await sql(n, 'SELECT @@port', { timeout: 5000 })) === String(n.port);
  } catch { return false; }
}

/** ROLE in one word: master (n replicas) | replica of host:port (link state) | sentinel. */
export async function redisRole(n) {
  try {
    const r = await redis(n, 'ROLE');
    if (r[0] === 'master') return `role=master replicas=${r[2]?.length ?? 0}`;
    if (r[0] === 'slave') return `role=replica of ${r[1]}:${r[2]} link=${r[3]}`;
    return `role=${r[0]}`;
  } catch (e) { return `role=? (${e.message})`; }
}
