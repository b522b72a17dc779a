import { describe, expect, it } from '@jest/globals';
import { BackgroundLoop, createLogger } from '#libs/core';

const quiet = () => {
  const lines: string[] = [];
  return { lines, logger: createLogger('warn', 'test', { write: (s: string) => void lines.push(s) }) };
};
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
};

describe('BackgroundLoop', () => {
  it('when a round is slower than the interval, then rounds never overlap in one process', async () => {
    const { logger } = quiet();
    let active = 0;
    let most = 0;
    let rounds = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const loop = new BackgroundLoop('slow', async () => {
      active++;
      most = Math.max(most, active);
      if (rounds === 0) await held; // the first round outlasts many intervals
      active--;
      rounds++;
    }, logger);
    loop.start({ everyMs: 2, firstDelayMs: 0 });
    await until(() => active === 1);
    await new Promise((r) => setTimeout(r, 30)); // ~15 intervals pass while the first round is held
    expect(rounds).toBe(0);
    release();
    await until(() => rounds >= 3);
    await loop.stop();
    expect(most).toBe(1);
  });

  it('when a round fails, then it is logged with the loop name and the next round still runs', async () => {
    const { lines, logger } = quiet();
    let calls = 0;
    const loop = new BackgroundLoop('flaky', async () => {
      calls++;
      if (calls === 1) throw new Error('boom');
    }, logger);
    loop.start({ everyMs: 2, firstDelayMs: 0 });
    await until(() => calls >= 3);
    await loop.stop();
    expect(lines.some((l) => l.includes('"loop":"flaky"') && l.includes('boom'))).toBe(true);
  });

  it('when stopped, then stop() waits for the round in flight and no round starts afterwards', async () => {
    const { logger } = quiet();
    let finished = 0;
    let started = 0;
    const loop = new BackgroundLoop('stopping', async () => {
      started++;
      await new Promise((r) => setTimeout(r, 20));
      finished++;
    }, logger);
    loop.start({ everyMs: 2, firstDelayMs: 0 });
    await until(() => started === 1);
    await loop.stop();
    expect(finished).toBe(started);
    const after = started;
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toBe(after);
  });

  it('when the interval is 0, then the loop never runs', async () => {
    const { logger } = quiet();
    let calls = 0;
    const loop = new BackgroundLoop('off', async () => void calls++, logger);
    loop.start({ everyMs: 0, firstDelayMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    await loop.stop();
    expect(calls).toBe(0);
  });
});
