/**
 * Shorts test helpers: workers run as real child processes from dist (what compose runs), a test owns its
 * queue (and so its streams and consumer group), SSE is read with fetch, and uploads speak tus.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';
import { testEnv } from '#libs/testing';

export const uniqueQueue = (tag: string) => `shorts-${tag}-${randomUUID().slice(0, 8)}`;

export interface WorkerProc {
  child: ChildProcess;
  pid: number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startWorker(env: Record<string, string>): WorkerProc {
  const child = spawn(process.execPath, [join(repoRoot(), 'dist/apps/shorts-worker/src/main.js')], {
    cwd: repoRoot(),
    env: { ...process.env, ...testEnv(), LOG_LEVEL: 'warn', ...env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    pid: child.pid!,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Creates a tus upload; returns its URL. */
export async function tusCreate(base: string, token: string, length: number, filename = 'video.mp4'): Promise<Response> {
  return fetch(`${base}/shorts/uploads`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'tus-resumable': '1.0.0',
      'upload-length': String(length),
      'upload-metadata': `filename ${Buffer.from(filename).toString('base64')}`,
    },
  });
}

export async function tusPatch(url: string, token: string, offset: number, body: Buffer): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(body),
  });
}

export async function tusOffset(url: string, token: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' } });
  if (res.status !== 200) throw new Error(`HEAD ${url}: ${res.status}`);
  return Number(res.headers.get('upload-offset'));
}

/** Uploads a whole buffer in one PATCH; returns the job (= upload) id. */
export async function uploadWhole(base: string, token: string, data: Buffer, filename = 'video.mp4'): Promise<string> {
  const created = await tusCreate(base, token, data.length, filename);
  if (created.status !== 201) throw new Error(`tus create: ${created.status} ${await created.text()}`);
  const url = new URL(created.headers.get('location')!, base).toString();
  const res = await tusPatch(url, token, 0, data);
  if (res.status !== 204) throw new Error(`tus patch: ${res.status} ${await res.text()}`);
  return url.split('/').pop()!;
}
