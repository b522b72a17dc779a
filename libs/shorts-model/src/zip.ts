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
