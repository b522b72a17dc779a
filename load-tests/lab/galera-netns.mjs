// Runs one Galera node inside a network namespace of its own (started as `unshare --net -- node
// galera-netns.mjs <spec>`). Why: Galera gossips every node's real listen address and connects to it
// directly, so on one shared loopback the B<->C traffic would bypass the delay proxies. In its own
// namespace a node reaches its peers only through bridges on its private 127.0.0.1 (peer port ->
// unix socket of the lab's WAN link), and the WAN reaches the node through a unix socket (filesystem
// paths cross namespaces; TCP ports do not). Clients use mariadbd's own unix socket.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { DelayProxy } from './delay-proxy.mjs';

const spec = JSON.parse(process.argv[2]);
execFileSync('ip', ['link', 'set', 'lo', 'up']);
const bridges = await Promise.all(spec.bridges.map((b) => new DelayProxy({ ...b, delayMs: 0 }).listen()));
const [cmd, ...args] = spec.server;
const child = spawn(cmd, args, { stdio: 'inherit' });
if (spec.pidsFile) fs.appendFileSync(spec.pidsFile, `${child.pid}\n`);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig === 'SIGINT' ? 'SIGTERM' : sig));
process.on('exit', () => { if (child.exitCode == null) child.kill('SIGKILL'); });
child.on('exit', async (code, signal) => {
  await Promise.all(bridges.map((b) => b.close()));
  process.exit(code ?? (signal ? 1 : 0));
});
