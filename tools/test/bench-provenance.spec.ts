import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { checkGoals, computeRatios, markdown, parseArgs, runBench, type ModeResult } from '../../load-tests/runner/bench.js';
import { baseProvenance, cpuSecondsFromStat, saturationVerdict, type CapRecord } from '../../load-tests/runner/provenance.js';
import { repoRoot } from '#libs/core';

const mode = (rps: number, more: Partial<ModeResult> = {}): ModeResult => ({ rps, p50_ms: 1, p99_ms: 2, errors: 0, requests: rps * 10, ...more });
const capped = (applied: boolean, requested = 0.1): CapRecord => ({ requested, applied, mechanism: applied ? 'v1' : 'none', nodes: applied ? ['primary', 'replica-1', 'replica-2'] : [], ...(applied ? {} : { reason: 'no cgroup cpu controller' }) });

describe('bench results: provenance, caps and capacity-bound ratios', () => {
  it('a mode none of whose named capped nodes used 85 % of its quota is "not capacity-bound", naming each node and its share', () => {
    const cpu = { 'replica-1': 0.09, 'replica-2': 0.06, primary: 0.05 };
    expect(saturationVerdict(['replica-1'], cpu, capped(true))).toEqual({ capacityBound: true, reason: '' });
    expect(saturationVerdict(['primary'], cpu, capped(true))).toEqual({ capacityBound: false, reason: 'no named node saturated: primary used 50 % of its 0.1 CPU quota' });
    expect(saturationVerdict(['replica-2', 'primary'], cpu, capped(true))).toEqual({ capacityBound: false, reason: 'no named node saturated: replica-2 used 60 % of its 0.1 CPU quota; primary used 50 % of its 0.1 CPU quota' });
    expect(saturationVerdict(['replica-1'], cpu, capped(false)).capacityBound).toBe(false);
  });

  it('under round-robin the slowest capped node sets the pace: one saturated named node makes the mode capacity-bound', () => {
    expect(saturationVerdict(['replica-1', 'replica-2'], { 'replica-1': 0.09, 'replica-2': 0.06 }, capped(true))).toEqual({ capacityBound: true, reason: '' });
  });

  it("a capped node throttled in at least 90 % of the window's CFS periods is saturated even when /proc shows less than 85 % of its quota", () => {
    const cpu = { 'replica-1': 0.06, 'replica-2': 0.06 };
    const throttle = { 'replica-1': { periods: 90, throttled: 90 }, 'replica-2': { periods: 90, throttled: 60 } };
    expect(saturationVerdict(['replica-1'], cpu, capped(true), throttle)).toEqual({ capacityBound: true, reason: '' });
    expect(saturationVerdict(['replica-2'], cpu, capped(true), throttle)).toEqual({ capacityBound: false, reason: 'no named node saturated: replica-2 used 60 % of its 0.1 CPU quota, throttled in 67 % of periods' });
    // Too few periods to judge: the /proc share decides.
    expect(saturationVerdict(['replica-1'], cpu, capped(true), { 'replica-1': { periods: 5, throttled: 5 } }).capacityBound).toBe(false);
    // Throttling never stands in for caps that were not applied.
    expect(saturationVerdict(['replica-1'], cpu, capped(false), throttle).capacityBound).toBe(false);
  });

  it('a ratio over a mode that was not capacity-bound is omitted with the reason, never reported as a number', () => {
    const results = { a: mode(300, { capacityBound: false, boundReason: 'replica-2 used 60 % of its 0.1 CPU quota' }), b: mode(150, { capacityBound: true }) };
    const caps = { modes: { a: capped(true), b: capped(true) } } as any;
    const r = computeRatios({ ratios: { a_vs_b: ['a', 'b'] } }, results, { caps });
    expect(r.ratios).toEqual({});
    expect(r.ratiosOmitted).toEqual({ a_vs_b: 'not capacity-bound: a (replica-2 used 60 % of its 0.1 CPU quota)' });
  });

  it('a mode whose caps were not applied cannot feed a ratio, and its table row says NOT applied', () => {
    const results = { a: mode(300), b: mode(150) };
    const caps = { mechanism: 'none', uncappedOk: true, modes: { a: capped(false), b: capped(false) } } as any;
    const { ratios, ratiosOmitted } = computeRatios({ ratios: { a_vs_b: ['a', 'b'] } }, results, { caps });
    expect(ratios).toEqual({});
    expect(ratiosOmitted.a_vs_b).toMatch(/^caps not applied: a \(no cgroup cpu controller\)/);
    const md = markdown({ scenario: 's', modes: results, ratios, ratiosOmitted, provenance: { caps } });
    expect(md).toContain('| a | 300 | 1 | 2 | 0 | 0.1 CPU requested, **NOT applied** |');
    expect(md).toContain('| a_vs_b | omitted, caps not applied: a');
  });

  it('a goal is met, not met, or not measured when its ratio was omitted (never guessed)', () => {
    const g = checkGoals({ up: ['>=', 0.75], more: ['>', 1], tail: ['<=', 2], gone: ['>=', 3] }, { up: 0.74, more: 1.2, tail: 2 });
    expect(g).toEqual({
      up: { op: '>=', target: 0.75, value: 0.74, met: false },
      more: { op: '>', target: 1, value: 1.2, met: true },
      tail: { op: '<=', target: 2, value: 2, met: true },
      gone: { op: '>=', target: 3, value: null, met: null },
    });
  });

  it('ratios of capped, capacity-bound modes are reported', () => {
    const results = { a: mode(300, { capacityBound: true }), b: mode(150, { capacityBound: true }) };
    const caps = { modes: { a: capped(true), b: capped(true) } } as any;
    expect(computeRatios({ ratios: { a_vs_b: ['a', 'b'] } }, results, { caps })).toEqual({ ratios: { a_vs_b: 2 }, ratiosOmitted: {} });
  });

  it('when the reference was measured twice (a shared box), then a ratio divides by the better measurement: the highest req/s, the lowest latency', () => {
    const results = { a: mode(300, { p99_ms: 40, extra: { p99_l1_ms: 8 } }), ref: mode(150, { p99_ms: 20, extra: { p99_all_ms: 10 } }), ref_again: mode(600, { p99_ms: 5, extra: { p99_all_ms: 4 } }) };
    const caps = { modes: {} } as any;
    const ratios = { a_vs_ref: ['a', ['ref', 'ref_again']], p99: ['a', ['ref', 'ref_again'], 'p99_ms'], l1: ['a', ['ref', 'ref_again'], 'p99_l1_ms', 'p99_all_ms'], one: ['a', ['ref', 'missing']] } as const;
    expect(computeRatios({ ratios: ratios as any }, results, { caps }).ratios).toEqual({ a_vs_ref: 0.5, p99: 8, l1: 2, one: 2 });
  });

  it('--uncapped-ok is a flag: it does not swallow the next option', () => {
    expect(parseArgs(['replica-reads', '--uncapped-ok', '--duration', '5s']).opts).toEqual({ 'uncapped-ok': 'true', duration: '5s' });
  });

  it('CPU seconds come from /proc/<pid>/stat fields 14 and 15, even when the process name holds spaces and parens', () => {
    const stat = '4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 12 0 1000 1000000 100';
    expect(cpuSecondsFromStat(stat, 100)).toBeCloseTo(3.8);
  });

  it('provenance names the commit, the machine and the exact command line', () => {
    const p = baseProvenance(repoRoot(), ['node', 'bench.js', 'replica-reads', '--duration', '5s']);
    expect(p.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof p.dirty).toBe('boolean');
    expect(p.machine.cores).toBeGreaterThan(0);
    expect(p.command).toBe('npm run bench -- replica-reads --duration 5s');
    expect(p.loadavg.before).toHaveLength(3);
  });
});

describe('bench without CPU caps', () => {
  it('a capped benchmark where no cgroup cpu controller is writable stops with one sentence saying why, naming --uncapped-ok', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-cgroup-'));
    const saved = process.env.STACK_CGROUP_ROOT;
    process.env.STACK_CGROUP_ROOT = empty; // a machine with no cgroup cpu controller at all
    try {
      await expect(runBench('replica-reads', { write: 'false', duration: '1s', warmup: '0s' })).rejects.toThrow(
        /^modes primary-only, one-replica, two-replicas need CPU caps, but no cgroup cpu controller under .*; rerun with --uncapped-ok to measure them uncapped \(marked so, and their ratios omitted\)$/,
      );
    } finally {
      if (saved === undefined) delete process.env.STACK_CGROUP_ROOT;
      else process.env.STACK_CGROUP_ROOT = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
