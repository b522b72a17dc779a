/**
 * StorageTusStore: a tus DataStore over the ObjectStorage port, so resumable uploads work the same on
 * the filesystem and on S3, and any API instance can continue an upload another one started.
 * Layout per upload (shortsKeys in libs/shorts-jobs): info.json (size, metadata), parts/<offset> (one object
 * per PATCH, holding exactly the bytes that PATCH delivered — a cut connection keeps what arrived), and,
 * when the last byte arrives, source: the parts concatenated in order, then deleted.
 * Trade-off: completion copies the file once more (cheap next to the model; a native S3 multipart
 * store such as @tus/s3-store avoids it but ties the upload path to one driver). Writes to one upload
 * are serialised by the tus locker (RedisLocker across instances).
 */
import { PassThrough, type Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import { shortsKeys } from '#libs/shorts-jobs';
import { ObjectNotFound, type ObjectStorage } from '#libs/storage';

const OFFSET_WIDTH = 16;

const { source: sourceKeyOf, uploadInfo: infoKey, uploadParts: partsPrefix } = shortsKeys;

interface UploadInfo {
  id: string;
  size?: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

export class StorageTusStore extends DataStore {
  /** expiryMs > 0: tus answers 410 for an upload older than this (the retention sweeper deletes it). */
  constructor(
    private readonly storage: ObjectStorage,
    private readonly expiryMs = 0,
  ) {
    super();
    this.extensions = ['creation', 'creation-with-upload', 'termination', 'creation-defer-length', ...(expiryMs > 0 ? ['expiration'] : [])];
  }

  override getExpiration(): number {
    return this.expiryMs;
  }

  override async create(upload: Upload): Promise<Upload> {
    const info: UploadInfo = { id: upload.id, size: upload.size, metadata: upload.metadata, creation_date: upload.creation_date ?? new Date().toISOString() };
    await this.storage.put(infoKey(upload.id), JSON.stringify(info));
    upload.storage = { type: 'object-storage', path: sourceKeyOf(upload.id) };
    return upload;
  }

  private async info(id: string): Promise<UploadInfo> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw ERRORS.FILE_NOT_FOUND;
    try {
      const chunks: Buffer[] = [];
      for await (const c of await this.storage.get(infoKey(id))) chunks.push(Buffer.from(c));
      return JSON.parse(Buffer.concat(chunks).toString()) as UploadInfo;
    } catch (e) {
      if (e instanceof ObjectNotFound) throw ERRORS.FILE_NOT_FOUND;
      throw e;
    }
  }

  override async getUpload(id: string): Promise<Upload> {
    const info = await this.info(id);
    const done = await this.storage.head(sourceKeyOf(id));
    const offset = done ? done.size : (await this.storage.list(partsPrefix(id))).reduce((n, p) => n + p.size, 0);
    return new Upload({ id, size: info.size, offset, metadata: info.metadata, creation_date: info.creation_date, storage: { type: 'object-storage', path: sourceKeyOf(id) } });
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const info = await this.info(id);
    const part = `${partsPrefix(id)}${String(offset).padStart(OFFSET_WIDTH, '0')}`;
    const { size } = await this.storage.put(part, stream);
    if (size === 0) await this.storage.delete(part);
    const newOffset = offset + size;
    if (info.size !== undefined && newOffset === info.size) await this.compose(id);
    return newOffset;
  }

  /** Concatenates the parts into the final object, in offset order, then drops them. */
  private async compose(id: string): Promise<void> {
    const parts = await this.storage.list(partsPrefix(id));
    const total = parts.reduce((n, p) => n + p.size, 0);
    const out = new PassThrough();
    const pump = (async () => {
      for (const p of parts) {
        for await (const chunk of await this.storage.get(p.key)) if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
    })();
    pump.catch((e) => out.destroy(e));
    await Promise.all([this.storage.put(sourceKeyOf(id), out, { length: total }), pump]);
    for (const p of parts) await this.storage.delete(p.key);
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    const info = await this.info(id);
    await this.storage.put(infoKey(id), JSON.stringify({ ...info, size: length }));
  }

  override async remove(id: string): Promise<void> {
    await this.info(id);
    await this.storage.deletePrefix(shortsKeys.uploadPrefix(id));
  }
}
