/**
 * The model on inputs that try to make ffmpeg open something else: a playlist or a concat list naming a
 * file of this machine, or a URL. The demuxer allowlist refuses them at the first probe.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FfmpegShortsModel, ModelInputError } from '#libs/shorts-model';
import { makeSyntheticVideo } from '#libs/testing';

let dir: string;
let ts: string;
let server: Server;
let port = 0;
let hits = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorts-hostile-'));
  const mp4 = await makeSyntheticVideo(join(dir, 'in.mp4'), { seconds: 60 });
  ts = join(dir, 'in.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', mp4, '-c', 'copy', '-f', 'mpegts', ts]);
  server = createServer((_req, res) => {
    hits++;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

async function run(name: string, body: string) {
  const file = join(dir, name);
  await writeFile(file, body);
  const out = join(dir, `out-${name}`);
  const result = new FfmpegShortsModel().generate(createReadStream(file), out);
  return { result, out };
}

describe('FfmpegShortsModel on hostile inputs', () => {
  it('an HLS playlist whose segment is a file on this machine is refused (no local file read)', async () => {
    const { result, out } = await run('local.mp4', `#EXTM3U\n#EXT-X-TARGETDURATION:60\n#EXTINF:60.0,\nfile://${ts}\n#EXT-X-ENDLIST\n`);
    await expect(result).rejects.toThrow(new ModelInputError('not a video file'));
    await expect(result.catch((e) => e.code)).resolves.toBe('unsupported_input');
    expect(await readdir(out)).toEqual([]);
  });

  it('an HLS playlist whose segments are URLs is refused without any request', async () => {
    const { result } = await run('remote.mp4', `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nhttp://127.0.0.1:${port}/a.ts\n#EXT-X-ENDLIST\n`);
    await expect(result).rejects.toThrow(new ModelInputError('not a video file'));
    expect(hits).toBe(0);
  });

  it('a concat list is refused, and the refusal carries ffmpeg\'s words only in its detail', async () => {
    const { result } = await run('list.mp4', `ffconcat version 1.0\nfile '${ts}'\n`);
    const err = (await result.catch((e) => e)) as ModelInputError;
    expect(err).toBeInstanceOf(ModelInputError);
    expect(err.message).toBe('not a video file');
    expect(err.detail).toMatch(/not on whitelist/);
  });

  it('an allowlisted container (mpegts) still works', async () => {
    const out = join(dir, 'out-ts');
    const { archivePath } = await new FfmpegShortsModel().generate(createReadStream(ts), out);
    expect(archivePath).toBe(join(out, 'shorts.zip'));
  }, 60000);
});
