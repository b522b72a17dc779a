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

/** Stable failure codes a client may branch on; the sentence next to them is for people and may change. */
export type FailureCode = 'unsupported_input' | 'too_short' | 'time_limit' | 'processing_failed' | 'worker_lost';

/**
 * The input cannot be turned into shorts (not a video, a refused format, too short). Retrying will not
 * help. Its message is shown to the user: a fixed sentence, never a path or a tool's output.
 */
export class ModelInputError extends Error {
  override name = 'ModelInputError';
  constructor(
    message: string,
    readonly code: FailureCode = 'unsupported_input',
    /** What the tools said, for the operator's log (ToolError), never for the user. */
    readonly detail?: string,
  ) {
    super(message);
  }
}
