import { describe, expect, it } from '@jest/globals';
import { BUCKETS, bucketOf, decodeOrderId, encodeOrderId, OrderIdGenerator, parseOrderId } from '#libs/db';

describe('order ids', () => {
  it('round-trip time, bucket and sequence through 63 bits', () => {
    const t = Date.UTC(2026, 10, 27, 12, 0, 0, 123);
    const id = encodeOrderId(t, 1023, 4095);
    expect(id < 1n << 63n).toBe(true);
    expect(decodeOrderId(id)).toEqual({ timestampMs: t, bucket: 1023, sequence: 4095 });
    expect(decodeOrderId(id.toString())).toEqual({ timestampMs: t, bucket: 1023, sequence: 4095 });
  });

  it('are strictly increasing within a process, even when the clock steps backwards', () => {
    const g = new OrderIdGenerator();
    const t = Date.now();
    const ids = [g.next(5, t), g.next(5, t), g.next(5, t - 5000), g.next(5, t - 5000), g.next(5, t + 1)];
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    expect(new Set(ids.map(String)).size).toBe(ids.length);
  });

  it('never repeat when one millisecond issues more ids than the sequence holds', () => {
    const g = new OrderIdGenerator();
    const t = Date.now();
    const seen = new Set<string>();
    for (let i = 0; i < 10000; i++) seen.add(String(g.next(7, t)));
    expect(seen.size).toBe(10000);
  });

  it('parse only positive 63-bit decimal strings', () => {
    expect(parseOrderId('123')).toBe(123n);
    for (const bad of ['', '0', '-1', '1e3', '01', 'abc', '9223372036854775808', '1'.repeat(25)]) expect(parseOrderId(bad)).toBeNull();
  });

  it('spread sequential users evenly over the buckets', () => {
    const counts = new Array(BUCKETS).fill(0);
    for (let u = 1; u <= 102400; u++) counts[bucketOf(u)]++;
    // 100 expected per bucket; a stable hash keeps every bucket within ±50%.
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(150);
    expect(bucketOf(42)).toBe(bucketOf('42'));
  });
});
