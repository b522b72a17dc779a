import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder whose package.json is "mallscale"), found from this file, whether run from src or dist. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'mallscale') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the mallscale repository root from ' + import.meta.url);
    dir = up;
  }
}
