import { isAbsolute, join } from 'node:path';
import { repoRoot, type AppConfig } from '#libs/core';
import { FsStorage } from './fs-storage.js';
import type { ObjectStorage } from './object-storage.js';
import { S3Storage } from './s3-storage.js';

/** The driver chosen by STORAGE_DRIVER (fs by default, under STORAGE_FS_ROOT, relative to the repository root so every process agrees). */
export function createStorage(config: AppConfig['storage']): ObjectStorage {
  return config.driver === 's3' ? new S3Storage(config.s3) : new FsStorage(isAbsolute(config.fsRoot) ? config.fsRoot : join(repoRoot(), config.fsRoot));
}
