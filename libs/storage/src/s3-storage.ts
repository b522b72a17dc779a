/**
 * S3Storage: the same port on S3 (AWS SDK v3), for MinIO in compose or AWS. put() with a stream of
 * unknown length spools to a temp file first, because PutObject needs Content-Length and the port
 * promises atomic replace (S3 PUT is atomic per key). Checksums are sent only when S3 requires them, so
 * S3-compatible servers that predate the SDK's default CRC32 trailers (MinIO releases, s3rver) work.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { assertKey, ObjectNotFound, ObjectStorage, type StoredObject } from './object-storage.js';

export interface S3StorageOptions {
  endpoint?: string;
  bucket: string;
  region: string;
  accessKey?: string;
  secretKey?: string;
  forcePathStyle: boolean;
}

const notFound = (e: any) => e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;

export class S3Storage extends ObjectStorage {
  readonly driver = 's3' as const;
  readonly client: S3Client;
  readonly bucket: string;

  constructor(opts: S3StorageOptions) {
    super();
    this.bucket = opts.bucket;
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.accessKey && opts.secretKey ? { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey } : undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async ensureReady(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (!notFound(e)) throw e;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async put(key: string, body: Readable | Buffer | string, opts: { contentType?: string; length?: number } = {}): Promise<StoredObject> {
    assertKey(key);
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      const buf = Buffer.from(body);
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: buf, ContentLength: buf.length, ContentType: opts.contentType }));
      return { key, size: buf.length };
    }
    if (opts.length !== undefined) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: opts.length, ContentType: opts.contentType }));
      return { key, size: opts.length };
    }
    const dir = await mkdtemp(join(tmpdir(), 'mallscale-s3-'));
    try {
      const file = join(dir, 'body');
      await pipeline(body, createWriteStream(file));
      const size = (await stat(file)).size;
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(file), ContentLength: size, ContentType: opts.contentType }));
      return { key, size };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    assertKey(key);
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined }),
      );
      return res.Body as Readable;
    } catch (e) {
      if (notFound(e)) throw new ObjectNotFound(key);
      throw e;
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    assertKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: Number(res.ContentLength ?? 0) };
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) out.push({ key: o.Key!, size: Number(o.Size ?? 0) });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  close(): void {
    this.client.destroy();
  }
}
