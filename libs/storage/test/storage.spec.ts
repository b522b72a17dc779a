/**
 * One contract, two drivers: FsStorage on a temp directory and S3Storage against s3rver, an
 * S3-compatible server that runs in-process (no Docker); compose uses MinIO for the same driver.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import { FsStorage, ObjectNotFound, S3Storage, type ObjectStorage } from '#libs/storage';

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

let dir: string;
let s3server: any;
let s3: S3Storage;
const drivers: Record<string, () => ObjectStorage> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'storage-spec-'));
  s3server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(dir, 's3rver') });
  const { port } = await s3server.run();
  s3 = new S3Storage({ endpoint: `http://127.0.0.1:${port}`, bucket: `spec-${randomUUID().slice(0, 8)}`, region: 'us-east-1', accessKey: 'S3RVER', secretKey: 'S3RVER', forcePathStyle: true });
  await s3.ensureReady();
  await s3.ensureReady(); // idempotent
  const fs = new FsStorage(join(dir, 'fs'));
  await fs.ensureReady();
  drivers.fs = () => fs;
  drivers.s3 = () => s3;
});

afterAll(async () => {
  s3?.close();
  await s3server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each(['fs', 's3'])('ObjectStorage (%s driver)', (name) => {
  const storage = () => drivers[name]();

  it('when a stream of unknown length is put, then get returns the same bytes and head its size', async () => {
    const data = randomBytes(300_000);
    const key = `t/${randomUUID()}/blob.bin`;
    const stored = await storage().put(key, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
    expect(stored.size).toBe(data.length);
    expect((await storage().head(key))?.size).toBe(data.length);
    const back = await readAll(await storage().get(key));
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await readAll(await storage().get(key, { start: 10, end: 19 }))).toEqual(data.subarray(10, 20));
  });

  it('when the same key is put twice, then the second body replaces the first (idempotent reruns)', async () => {
    const key = `t/${randomUUID()}/result.zip`;
    await storage().put(key, 'first version');
    await storage().put(key, Buffer.from('second'));
    expect((await readAll(await storage().get(key))).toString()).toBe('second');
  });

  it('when listing a prefix, then only its objects come back, sorted; deletePrefix removes them', async () => {
    const p = `t/${randomUUID()}`;
    await storage().put(`${p}/parts/0002`, 'b');
    await storage().put(`${p}/parts/0001`, 'a');
    await storage().put(`${p}-other/x`, 'x');
    expect((await storage().list(`${p}/parts/`)).map((o) => o.key)).toEqual([`${p}/parts/0001`, `${p}/parts/0002`]);
    expect(await storage().deletePrefix(`${p}/`)).toBe(2);
    expect(await storage().list(`${p}/`)).toEqual([]);
    expect(await storage().head(`${p}-other/x`)).toMatchObject({ size: 1 });
  });

  it('when a key is missing, then head is undefined, get throws ObjectNotFound, delete is a no-op', async () => {
    const key = `t/${randomUUID()}/missing`;
    expect(await storage().head(key)).toBeUndefined();
    await expect(storage().get(key)).rejects.toBeInstanceOf(ObjectNotFound);
    await storage().delete(key);
  });

  it('when a key tries to escape the root, then it is refused', async () => {
    await expect(storage().put('../escape', 'x')).rejects.toThrow(/invalid storage key/);
    await expect(storage().head('/abs')).rejects.toThrow(/invalid storage key/);
  });
});
