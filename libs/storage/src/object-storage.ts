/**
 * ObjectStorage: the port every upload and result goes through (seed Q2: "upload the video to separate
 * storage, never straight to a model server"). Two drivers: FsStorage (default, a directory that several
 * processes on one host share) and S3Storage (AWS S3, MinIO). Keys are '/'-separated relative names.
 * Trade-off: the port is deliberately small (put/get/head/list/delete); anything smarter (multipart,
 * presigned URLs) would tie callers to one driver.
 */
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
}

export class ObjectNotFound extends Error {
  override name = 'ObjectNotFound';
  constructor(readonly key: string) {
    super(`object '${key}' not found`);
  }
}

export abstract class ObjectStorage {
  /** Writes the whole body under key, replacing any previous object atomically (readers never see half). */
  abstract put(key: string, body: Readable | Buffer | string, opts?: { contentType?: string; length?: number }): Promise<StoredObject>;
  /** Streams the object (optionally bytes [start, end] inclusive). Throws ObjectNotFound. */
  abstract get(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  abstract head(key: string): Promise<StoredObject | undefined>;
  /** Every object whose key starts with prefix, sorted by key. */
  abstract list(prefix: string): Promise<StoredObject[]>;
  /** Idempotent: deleting a missing key is not an error. */
  abstract delete(key: string): Promise<void>;
  /** Creates what the driver needs (a directory, a bucket). Idempotent. */
  abstract ensureReady(): Promise<void>;
  abstract readonly driver: 'fs' | 's3';

  async deletePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (const o of objects) await this.delete(o.key);
    return objects.length;
  }
}

export function assertKey(key: string): void {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..') || /[\0\\]/.test(key)) {
    throw new Error(`invalid storage key '${key}'`);
  }
}
