import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '#libs/core';

// Behind a proxy the development keys are refused (see config.spec), so these configs bring their own.
const KEYS = { JWT_SECRET: '3f9c1e7a52b84d06a1e9c7f2b5d8e04a6c1f3b7d9e2a5c8f0b4d6e1a3c7f9b2d', ORDER_CURSOR_SECRET: 'a7d2f5c8e1b4a7d0c3f6e9b2a5d8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2' };

describe('loadConfig: client address and abuse limits', () => {
  it('a deployment cannot trust every X-Forwarded-For entry: TRUST_PROXY is off by default, and true or a bare hop count is refused', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ ...KEYS, TRUST_PROXY: '10.0.0.0/8, 192.168.1.7' }).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.7']);
    expect(loadConfig({ ...KEYS, TRUST_PROXY: 'loopback' }).trustProxy).toEqual(['loopback']);
    for (const bad of ['true', 'on', '1', '*', 'lb.internal']) {
      expect(() => loadConfig({ ...KEYS, TRUST_PROXY: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...KEYS, TRUST_PROXY: bad })).toThrow(/^TRUST_PROXY must be off or a comma-separated list of the proxies' addresses/);
    }
  });

  it('limits are on by default, counted in the noeviction Redis, and 0 switches one limit off', () => {
    const c = loadConfig({ REDIS_QUEUE_URL: 'redis://queue.internal:6381' });
    expect(c.rateLimit).toMatchObject({
      enabled: true,
      redisUrl: 'redis://queue.internal:6381',
      prefix: 'mallscale:rl:',
      signInPerAccount: { max: 10, windowS: 900 },
      signInPerIp: { max: 100, windowS: 600 },
      signUpPerIp: { max: 20, windowS: 3600 },
      uploadPerUser: { max: 30, windowS: 3600 },
      uploadPerIp: { max: 60, windowS: 3600 },
      passwordChangePerUser: { max: 5, windowS: 900 },
    });
    expect(loadConfig({ RATE_LIMIT_SIGN_UP_IP_MAX: '0' }).rateLimit.signUpPerIp.max).toBe(0);
    expect(loadConfig({ RATE_LIMIT: 'off' }).rateLimit.enabled).toBe(false);
    expect(() => loadConfig({ RATE_LIMIT_SIGN_IN_ACCOUNT_WINDOW_S: '0' })).toThrow(/RATE_LIMIT_SIGN_IN_ACCOUNT_WINDOW_S must be an integer between 1 and/);
    expect(() => loadConfig({ RATE_LIMIT_PREFIX: 'a b' })).toThrow(/RATE_LIMIT_PREFIX must be/);
  });
});
