/**
 * The model contract, exactly as the seed states it: give the model (1) the source video as a stream and
 * (2) an output directory, and it writes ONE archive holding 3 shorts into that directory. Everything
 * around it (storage, queue, retries, progress events) lives outside, so a GPU model server can replace
 * the reference implementation without touching the pipeline.
 */
import type { Readable } from 'node:stream';

export interface ShortsModelOptions {
  /** 0..100, monotonic within one run. */
  onProgress?: (percent: number, stage: string) => void;
  signal?: AbortSignal;
}

export interface ShortsModelResult {
  /** Absolute path of the archive the model wrote inside the output directory. */
  archivePath: string;
}

export interface ShortsModel {
  generate(input: Readable, outputDir: string, opts?: ShortsModelOptions): Promise<ShortsModelResult>;
}

/** The input cannot be turned into shorts (not a video, too short). Retrying will not help. */
export class ModelInputError extends Error {
  override name = 'ModelInputError';
}
