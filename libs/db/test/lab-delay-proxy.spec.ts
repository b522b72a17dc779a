// The multi-region lab's WAN link (load-tests/lab/delay-proxy.mjs): every byte arrives, in order,
// never before its delay, through a bounded buffer; a cut holds bytes and a heal delivers them.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { DelayProxy } from '../../../load-tests/lab/delay-proxy.mjs';

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => { while (closers.length) await closers.pop()!(); });

/** An echo server on a free port. */
async function echoServer(): Promise<number> {
  const server = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return (server.address() as net.AddressInfo).port;
}

async function proxyTo(targetPort: number, delayMs: number, maxQueuedBytes?: number): Promise<DelayProxy> {
  const p = await new DelayProxy({ name: 'test', listenPort: 0, targetPort, delayMs, maxQueuedBytes }).listen();
  closers.push(() => p.close());
  return p;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => { const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s)); s.on('error', reject); });
}

/** Sends `data` in small writes and resolves with everything echoed back once `data.length` bytes came back. */
function roundTrip(sock: net.Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let n = 0;
    sock.on('data', (d: Buffer) => { got.push(d); n += d.length; if (n >= data.length) resolve(Buffer.concat(got)); });
    for (let i = 0; i < data.length; i += 1000) sock.write(data.subarray(i, i + 1000));
  });
}

const sha = (b: Buffer) => createHash('sha1').update(b).digest('hex');

describe('lab DelayProxy', () => {
  it('DelayProxy › when 2 MB cross a delayed link both ways through a 64 KB buffer, then every byte arrives in order and none early', async () => {
    const proxy = await proxyTo(await echoServer(), 5, 64 * 1024);
    const sock = await connect(proxy.listenPort);
    closers.push(async () => sock.destroy());
    const data = randomBytes(2 * 1024 * 1024);
    const back = await roundTrip(sock, data);
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
    expect(proxy.stats.bytes).toBe(2 * data.length); // both directions went through the delay queues
    expect(proxy.stats.maxEarlyMs).toBeLessThanOrEqual(0); // no chunk was written before its due time
  });

  it('DelayProxy › when the link is cut, then nothing crosses until it is healed, and then everything does', async () => {
    const proxy = await proxyTo(await echoServer(), 1);
    const sock = await connect(proxy.listenPort);
    closers.push(async () => sock.destroy());
    await roundTrip(sock, Buffer.from('warm-up')); // the connection exists before the cut
    sock.removeAllListeners('data');
    proxy.cut();
    let received = 0;
    sock.on('data', (d: Buffer) => { received += d.length; });
    const before = proxy.stats.bytes;
    sock.write(Buffer.from('held during the partition'));
    const late = await connect(proxy.listenPort); // a new connection during the cut is held, not forwarded
    closers.push(async () => late.destroy());
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toBe(0);
    proxy.heal();
    for (let i = 0; i < 100 && received < 26; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toBe('held during the partition'.length);
    expect(proxy.stats.bytes).toBeGreaterThan(before);
    expect(sha(await roundTrip(late, Buffer.from('after heal')))).toBe(sha(Buffer.from('after heal')));
  });
});
