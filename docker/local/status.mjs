// What each node is doing, as one row per node: { name, role, kind, port, pid, state, cap, detail, replication? }
// (state: up | down | unresponsive | replication-down), and the table `status` prints.
import fs from 'node:fs';
import { answers, redis, redisRole } from './clients.mjs';
import { readCap } from './caps.mjs';
import { livePid } from './procs.mjs';
import { gtidPosition, replicaStatus } from './replication.mjs';

/** The status row of one node of the topology. */
export async function nodeRow(n) {
  const pid = livePid(n);
  const row = { name: n.name, role: n.role, kind: n.kind, port: n.port, pid, state: 'down', cap: pid ? readCap(pid) : null, detail: '' };
  if (!pid) { row.detail = fs.existsSync(n.pidFile) ? 'stale pid file' : ''; return row; }
  if (!(await answers(n))) { row.state = 'unresponsive'; return row; }
  row.state = 'up';
  try {
    if (n.kind === 'redis') {
      row.detail = `${await redisRole(n)} maxmemory-policy=${(await redis(n, 'CONFIG', 'GET', 'maxmemory-policy'))[1]}`;
    } else if (n.role === 'replica') {
      const st = (row.replication = await replicaStatus(n));
      if (!st || st.io !== 'Yes' || st.sql !== 'Yes') row.state = 'replication-down';
      row.detail = st ? `IO=${st.io} SQL=${st.sql} behind=${st.secondsBehind ?? '-'}s ${st.lastIoError || st.lastSqlError}`.trim() : 'not configured';
    } else {
      row.detail = `gtid=${(await gtidPosition(n)) || '-'}`;
    }
  } catch (e) { row.detail = e.message.split('\n')[0]; }
  return row;
}

export function printTable(rows) {
  const head = ['node', 'role', 'port', 'pid', 'state', 'cpu cap', 'detail'];
  const body = rows.map((r) => [r.name, r.role, r.port, r.pid ?? '-', r.state, r.cap == null ? '-' : r.cap.toFixed(2), r.detail].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(w[i])).join(' | ').trimEnd();
  console.log([line(head), w.map((x) => '-'.repeat(x)).join('-|-'), ...body.map(line)].join('\n'));
}

/** One line under the table: which cgroup mechanism caps (or would cap) the nodes, or why none can. */
export function printCapMechanism({ mechanism, dir, reason }) {
  console.log(mechanism === 'none' ? `cpu caps: unavailable (${reason})` : `cpu caps: cgroup ${mechanism} (${dir})`);
}
