// Supervising the servers as plain detached processes: a pid file per node, checked against /proc so a reused
// pid is never mistaken for ours, a log file per node, and one lock per STACK_DIR for parallel `up`s.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { STACK_DIR, fail, sleep } from './env.mjs';

function readPid(n) {
  try { return Number(fs.readFileSync(n.pidFile, 'utf8').trim()) || null; } catch { return null; }
}
export function isAlive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return true; } // no /proc (macOS)
}
/** pid from the pid file, if it is alive and really our server (guards against pid reuse). */
export function livePid(n) {
  const pid = readPid(n);
  if (!pid || !isAlive(pid)) return null;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(n.kind === 'redis' ? 'redis' : n.confFile)) return null;
  } catch { /* no /proc: trust the pid file */ }
  return pid;
}
export async function waitDead(pid, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (!isAlive(pid)) return true;
  return !isAlive(pid);
}
export function logTail(n, lines = 15) {
  try { return fs.readFileSync(n.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}
export function spawnDetached(n, cmd, args) {
  fs.appendFileSync(n.logFile, `\n==== stack.mjs: starting ${n.name} at ${new Date().toISOString()} ====\n`);
  const fd = fs.openSync(n.logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], cwd: n.dir });
  fs.closeSync(fd);
  child.on('error', () => {});
  child.unref();
  fs.writeFileSync(n.pidFile, `${child.pid}\n`);
  return child.pid;
}
/** SIGTERM (a clean shutdown), SIGKILL after `graceMs`. */
export async function terminate(pid, graceMs) {
  process.kill(pid, 'SIGTERM');
  if (!(await waitDead(pid, graceMs))) { process.kill(pid, 'SIGKILL'); await waitDead(pid, 5000); }
}
/** SIGKILL (failure tests); resolves once the process is gone. */
export async function kill(pid) {
  process.kill(pid, 'SIGKILL');
  await waitDead(pid, 10_000);
}

// ---------------------------------------------------------------- locking (parallel `up`s from CI jobs/jest)
let lockDepth = 0;
export async function withLock(fn) {
  const lock = path.join(STACK_DIR, '.lock');
  if (lockDepth === 0) {
    fs.mkdirSync(STACK_DIR, { recursive: true });
    for (const end = Date.now() + 180_000; ; await sleep(250)) {
      try { fs.writeFileSync(lock, String(process.pid), { flag: 'wx' }); break; } catch (e) {
        if (e.code !== 'EEXIST') throw e;
        const holder = Number(fs.readFileSync(lock, 'utf8')) || 0;
        if (!holder || !isAlive(holder)) { fs.rmSync(lock, { force: true }); continue; }
        if (Date.now() > end) fail(`${lock} held by pid ${holder} for too long`);
      }
    }
  }
  lockDepth++;
  try { return await fn(); } finally { if (--lockDepth === 0) fs.rmSync(lock, { force: true }); }
}
