import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, maskUrl } from '#libs/core';

describe('config errors and URLs in messages', () => {
  const secret = 'Pa55-w0rd-s3cret';
  // Each of these is rejected; some do not even parse as a URL, which is exactly when a message echoes them.
  const bad: Record<string, string> = {
    DB_PRIMARY_URL: `mysql://app:${secret}@db.internal:3306/bad-name`,
    DB_REPLICA_URLS: `mysql://app:${secret}@db.internal:3306/ok,mysql://app:${secret}@h/`,
    DB_SHARD_URLS: `mysql://app:${secret}@db.internal:notaport/db`,
    REDIS_CACHE_URL: `http://:${secret}@cache.internal:6380`,
    REDIS_QUEUE_URL: `redis//:${secret}@queue.internal`,
  };

  it('a config error never prints the password in DB_PRIMARY_URL (or any other URL variable)', () => {
    const variants = [
      ['DB_PRIMARY_URL', `mysql://app:${secret}@db.internal:3306/bad-name`],
      ['DB_PRIMARY_URL', `mysql://app:${secret.slice(0, 4)}#${secret.slice(4)}@db.internal/db`], // '#' cuts the URL short
      ['DB_PRIMARY_URL', `mysql://app:${secret}/x@db.internal/db`],
      ['DB_PRIMARY_URL', `mysql://app:${secret}`],
      ['DB_PRIMARY_URL', `mysql://app:${secret}@`],
      ...Object.entries(bad),
    ];
    for (const [name, value] of variants) {
      let message = '';
      try {
        loadConfig({ [name]: value });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        message = (e as Error).message;
      }
      expect({ value, message }).toEqual({ value, message: expect.stringContaining(name) });
      expect(message).not.toContain(secret);
      expect(message).not.toContain(secret.slice(4)); // not even the part after a '#'
    }
  });

  it('a masked URL keeps what helps (scheme, user, host, port, database) and hides the password and secret parameters', () => {
    expect(maskUrl(`mysql://app:${secret}@db.internal:3306/shop`)).toBe('mysql://app:***@db.internal:3306/shop');
    expect(maskUrl(`redis://:${secret}@cache:6380`)).toBe('redis://:***@cache:6380');
    expect(maskUrl(`redis://cache:6380/0?password=${secret}&db=1`)).toBe('redis://cache:6380/0?password=***&db=1');
    expect(maskUrl('mysql://app@db.internal/shop')).toBe('mysql://app@db.internal/shop');
  });
});
