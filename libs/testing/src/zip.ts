/**
 * Reads an archive back (tests and result checks): name -> bytes, through yauzl (the reader that pairs with
 * the yazl writer the model uses), which checks the central directory and each entry's sizes and CRC.
 */
import yauzl from 'yauzl';
import { promisify } from 'node:util';
import { buffer } from 'node:stream/consumers';

export async function readZip(buf: Buffer): Promise<Map<string, Buffer>> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.fromBuffer(buf, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z))));
  const out = new Map<string, Buffer>();
  const openEntry = promisify(zip.openReadStream.bind(zip));
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      openEntry(entry)
        .then((stream) => buffer(stream))
        .then((data) => {
          out.set(entry.fileName, data);
          zip.readEntry();
        }, reject);
    });
    zip.readEntry();
  });
  return out;
}
