import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '#libs/core';

// The caps code of the native stack launcher, without touching a real cgroup: detection runs against fake
// /sys/fs/cgroup trees, the rest is formatting and parsing. (This box is cgroup v1, so the v2 write path is
// exercised only on a v2 host; what it writes is the cpu.max line tested here.)
interface Caps {
  detectCgroup(fsRoot: string, name?: string): { mechanism: 'v1' | 'v2' | 'none'; dir: string | null; reason: string };
  cfsQuota(cpu: number | null): { quotaUs: number; periodUs: number };
  formatCpuMax(cpu: number | null): string;
  parseCpuMax(text: string): number | null;
  cpuCgroupPath(procCgroupText: string, mechanism: 'v1' | 'v2'): string | null;
}

let caps: Caps;
let dir: string;
const tree = (name: string, files: Record<string, string>) => {
  const root = join(dir, name);
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), content);
  }
  mkdirSync(root, { recursive: true });
  return root;
};

beforeAll(async () => {
  caps = (await import(pathToFileURL(join(repoRoot(), 'docker/local/stack.mjs')).href)) as Caps;
  dir = mkdtempSync(join(tmpdir(), 'caps-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('native stack CPU caps', () => {
  it('a unified hierarchy offering the cpu controller is detected as cgroup v2, with our group under its root', () => {
    const root = tree('v2', { 'cgroup.controllers': 'cpuset cpu io memory pids\n', 'cgroup.subtree_control': '' });
    expect(caps.detectCgroup(root, 'mallscale')).toEqual({ mechanism: 'v2', base: root, dir: join(root, 'mallscale'), reason: '' });
  });

  it('a unified hierarchy without the cpu controller is no mechanism, and the reason names the missing controller', () => {
    const root = tree('v2-nocpu', { 'cgroup.controllers': 'memory pids\n', 'cgroup.subtree_control': '' });
    const r = caps.detectCgroup(root, 'mallscale');
    expect(r.mechanism).toBe('none');
    expect(r.reason).toMatch(/does not offer the cpu controller \(cgroup.controllers: memory pids\)/);
  });

  it('a v1 tree with a cpu controller (cpu/cpu.cfs_quota_us) is detected as cgroup v1', () => {
    const root = tree('v1', { 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n', 'memory/memory.limit_in_bytes': '0\n' });
    expect(caps.detectCgroup(root, 'mallscale')).toMatchObject({ mechanism: 'v1', dir: join(root, 'cpu', 'mallscale') });
  });

  it('a tree with neither is no mechanism, with one sentence saying so', () => {
    const r = caps.detectCgroup(tree('empty', {}), 'mallscale');
    expect(r.mechanism).toBe('none');
    expect(r.reason).toMatch(/^no cgroup cpu controller under .* \(neither v2's cgroup.controllers nor v1's cpu\/\)$/);
  });

  it('cpu.max is "<quota> <period>" with the 10 ms period, stretched only as far as the 1 ms minimum quota needs', () => {
    expect(caps.formatCpuMax(0.5)).toBe('5000 10000');
    expect(caps.formatCpuMax(0.1)).toBe('1000 10000');
    expect(caps.formatCpuMax(0.05)).toBe('1000 20000');
    expect(caps.formatCpuMax(null)).toBe('max 10000');
    expect(caps.cfsQuota(2)).toEqual({ quotaUs: 20000, periodUs: 10000 });
  });

  it('cpu.max parses back to cores; "max" is uncapped; anything else is refused', () => {
    expect(caps.parseCpuMax('1000 20000\n')).toBeCloseTo(0.05);
    expect(caps.parseCpuMax(caps.formatCpuMax(0.056))).toBeCloseTo(0.056, 3);
    expect(caps.parseCpuMax('max 100000')).toBeNull();
    expect(() => caps.parseCpuMax('1000')).toThrow(/unexpected cpu.max content "1000"/);
  });

  it("a process's cpu cgroup is found in /proc/<pid>/cgroup for either hierarchy", () => {
    const v1 = '9:name=systemd:/\n2:cpuacct:/\n1:cpu:/mallscale/primary\n0::/\n';
    const v1Joined = '4:cpu,cpuacct:/mallscale/replica-1\n0::/\n';
    expect(caps.cpuCgroupPath(v1, 'v1')).toBe('/mallscale/primary');
    expect(caps.cpuCgroupPath(v1Joined, 'v1')).toBe('/mallscale/replica-1');
    expect(caps.cpuCgroupPath('0::/mallscale/shard-0\n', 'v2')).toBe('/mallscale/shard-0');
    expect(caps.cpuCgroupPath('1:cpuacct:/x\n', 'v1')).toBeNull();
  });
});
