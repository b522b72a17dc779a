/**
 * FsStorage: objects are files under a root directory (default ./var/storage). put() writes a temp file
 * and renames it, so a reader sees the old or the new object, never a partial one, and a crashed writer
 * leaves only a *.tmp-* file behind (ignored by list()). Shared by every process on the host; for several
 * hosts use S3Storage.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { assertKey, ObjectNotFound, ObjectStorage, type StoredObject } from './object-storage.js';

export class FsStorage extends ObjectStorage {
  readonly driver = 'fs' as const;
  readonly root: string;

  constructor(root: string) {
    super();
    this.root = resolve(root);
  }

  private path(key: string): string {
    assertKey(key);
    return join(this.root, ...key.split('/'));
  }

  async ensureReady(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async put(key: string, body: Readable | Buffer | string): Promise<StoredObject> {
    const file = this.path(key);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await pipeline(typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body, createWriteStream(tmp));
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { key, size: (await stat(file)).size };
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const file = this.path(key);
    if (!(await this.head(key))) throw new ObjectNotFound(key);
    return createReadStream(file, range ? { start: range.start, end: range.end } : undefined);
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (e: any) {
      if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    // Walk only the deepest directory the prefix names, then filter by the full prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = dirPart ? join(this.root, ...dirPart.split('/')) : this.root;
    const out: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e: any) {
        if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR') return;
        throw e;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !/\.tmp-[0-9a-f]{12}$/.test(e.name)) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, size: (await stat(full)).size });
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
