/**
 * The archive the model writes: a ZIP with stored entries (shorts are already-compressed MP4s, so deflate
 * would only burn CPU) and a fixed timestamp, so identical inputs give a byte-identical archive
 * (determinism). yazl does the format; the fixed date is built from local-time fields so the DOS
 * timestamp is the same in every time zone.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import yazl from 'yazl';

export interface ZipEntry {
  name: string;
  path?: string;
  data?: Buffer;
}

const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);

export async function writeZip(file: string, entries: ZipEntry[]): Promise<void> {
  const zip = new yazl.ZipFile();
  const opts = { mtime: FIXED_MTIME, mode: 0o100644, compress: false };
  for (const e of entries) {
    if (e.data) zip.addBuffer(e.data, e.name, opts);
    else zip.addFile(e.path!, e.name, opts);
  }
  zip.end();
  const out = createWriteStream(file);
  zip.outputStream.pipe(out);
  await finished(out);
}

/** Reads a stored-only archive back (tests, result checks): name -> bytes. */
export function readZip(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const endAt = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endAt < 0) throw new Error('not a zip archive');
  const count = buf.readUInt16LE(endAt + 10);
  let p = buf.readUInt32LE(endAt + 16);
  for (let i = 0; i < count; i++) {
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extra = buf.readUInt16LE(p + 30);
    const comment = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    const dataAt = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    out.set(name, buf.subarray(dataAt, dataAt + size));
    p += 46 + nameLen + extra + comment;
  }
  return out;
}
