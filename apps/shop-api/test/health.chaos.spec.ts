/**
 * Killing a real replica process: its /health entry goes down, the API keeps serving; restarting it
 * brings it back. Runs alone (chaos suite) because it takes a shared node down.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { json, nativeStack, waitFor, type NativeStack, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let api: TestApi;
let stack: NativeStack;
beforeAll(async () => {
  stack = await nativeStack();
  api = await startApi();
});
afterAll(async () => {
  await stack.startNode('replica-1');
  await api?.close();
});

describe('GET /health when a replica dies', () => {
  it('marks that replica down (degraded, still 200), keeps serving, and shows it ready again after a restart', async () => {
    await stack.killNode('replica-1');
    const body = await waitFor(async () => {
      const b = await json(await fetch(`${api.url}/health`));
      return b.nodes.find((n: any) => n.name === 'replica-1')?.ready === false ? b : undefined;
    }, 15000);
    expect(body.status).toBe('degraded');
    expect(body.nodes.find((n: any) => n.name === 'replica-2').ready).toBe(true);
    expect(body.nodes.find((n: any) => n.name === 'primary').ready).toBe(true);
    // The API keeps answering.
    expect((await fetch(`${api.url}/categories`)).status).toBe(200);
    expect((await fetch(`${api.url}/health`)).status).toBe(200);

    await stack.startNode('replica-1');
    await waitFor(async () => {
      const b = await json(await fetch(`${api.url}/health`));
      return b.status === 'ok';
    }, 30000, 250);
  });
});
