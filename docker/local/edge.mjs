// The edge cache (optional: `up --edge`).
// Varnish (Debian package `varnish`) in front of shop-api on 127.0.0.1:6081 (STACK_PORT_EDGE), backend
// STACK_EDGE_BACKEND (default 127.0.0.1:3000, where `npm start` serves), product reads kept STACK_EDGE_TTL_S (10)
// + STACK_EDGE_GRACE_S (5). VCL: docker/varnish/mallscale.vcl;
// the backend and the purge ACL (loopback only) go into <STACK_DIR>/edge/site.vcl, written here. Not part of
// `nodes`: the default topology, caps and status checks stay the six nodes; `down` stops it too.
// startEdge() also runs private instances (tests, the hot-products `edge` mode) on ports of their own.
import fs from 'node:fs';
import path from 'node:path';
import { REPO, STACK_DIR, fail, sleep } from './env.mjs';
import { varnishd } from './install.mjs';
import { tcpProbe } from './clients.mjs';
import { isAlive, logTail, spawnDetached, terminate } from './procs.mjs';

const EDGE_VCL_DIR = path.join(REPO, 'docker', 'varnish');
export const edge = {
  name: 'edge', port: Number(process.env.STACK_PORT_EDGE || 6081), dir: path.join(STACK_DIR, 'edge'), backend: process.env.STACK_EDGE_BACKEND || '127.0.0.1:3000',
  ttlS: Number(process.env.STACK_EDGE_TTL_S || 10), graceS: Number(process.env.STACK_EDGE_GRACE_S || 5),
};

/** The site include: backend `default` at host:port, the loopback-only `purgers` ACL, and the TTL + grace of a product read. */
export function edgeSiteVcl(backend, ttlS = 10, graceS = 5) {
  const [, host, port] = /^\[?([^\]]+?)\]?:(\d+)$/.exec(backend) ?? fail(`edge backend must be host:port (got '${backend}')`);
  for (const [k, v] of [['ttl', ttlS], ['grace', graceS]]) if (!Number.isInteger(v) || v < 0 || v > 86_400) fail(`edge ${k} must be whole seconds 0..86400 (got ${v})`);
  return `backend default {\n    .host = "${host}";\n    .port = "${port}";\n    .connect_timeout = 2s;\n    .first_byte_timeout = 10s;\n}\n\nacl purgers {\n    "127.0.0.1";\n    "::1";\n}\n\nsub site_ttl {\n    set beresp.ttl = ${ttlS}s;\n    set beresp.grace = ${graceS}s;\n}\n`;
}

function edgePid(dir) {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'varnishd.pid'), 'utf8').trim());
    if (pid && isAlive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(dir, 'work'))) return pid;
  } catch { /* not running */ }
  return null;
}

/** Start varnishd in `dir` on 127.0.0.1:port in front of `backend`; resolves once it accepts connections. */
export async function startEdge({ port, backend, dir, memory = '64m', ttlS = 10, graceS = 5 }) {
  const running = edgePid(dir);
  if (running) return { pid: running, port, dir, url: `http://127.0.0.1:${port}`, stop: () => stopEdge(dir) };
  if (await tcpProbe(port)) fail(`edge: port ${port} is taken by a process that is not ours; set STACK_PORT_EDGE`);
  const bin = varnishd();
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755); // the VCL compiler runs as the unprivileged varnish user and reads site.vcl from here
  fs.writeFileSync(path.join(dir, 'site.vcl'), edgeSiteVcl(backend, ttlS, graceS), { mode: 0o644 });
  const n = { name: 'edge', dir, logFile: path.join(dir, 'varnishd.log'), pidFile: path.join(dir, 'varnishd.pid') };
  // -F: stays in the foreground, so the pid we keep is the manager (SIGTERM stops it and its child).
  const pid = spawnDetached(n, bin, ['-F', '-n', path.join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', '127.0.0.1:0',
    '-f', path.join(EDGE_VCL_DIR, 'mallscale.vcl'), '-p', `vcl_path=${dir}:${EDGE_VCL_DIR}`, '-s', `malloc,${memory}`]);
  for (const end = Date.now() + 30_000; !(await tcpProbe(port)); await sleep(100)) {
    if (!isAlive(pid) || Date.now() > end) fail(`edge did not start on ${port}:\n${logTail(n)}`);
  }
  return { pid, port, dir, url: `http://127.0.0.1:${port}`, stop: () => stopEdge(dir) };
}

export async function stopEdge(dir = edge.dir) {
  const pid = edgePid(dir);
  if (pid) await terminate(pid, 15_000);
  fs.rmSync(path.join(dir, 'varnishd.pid'), { force: true });
}

/** The edge's status row, or null when it is not meant to run (never started, or stopped by stopEdge). */
export async function edgeStatus() {
  if (!fs.existsSync(path.join(edge.dir, 'varnishd.pid'))) return null; // never started, or stopped by us
  const pid = edgePid(edge.dir);
  const state = !pid ? 'down' : (await tcpProbe(edge.port)) ? 'up' : 'unresponsive';
  return { name: 'edge', role: 'edge', kind: 'varnish', port: edge.port, pid, state, cap: null, detail: `backend ${edge.backend}` };
}
