/**
 * The contract between shop-api (which enqueues) and shorts-worker (which processes): the queue entry's
 * name, data and options, and where a job's files live in object storage. Both apps import it from here,
 * so a field or a key cannot drift between them.
 */
import type { JobsOptions } from 'bullmq';

/** The BullMQ entry's data. Its job id IS the job id (see shortsJobOptions), so a repeated add is a no-op. */
export interface ShortsJobData {
  jobId: string;
  userId: string;
  sourceKey: string;
}

/** The BullMQ job name of a shorts generation. */
export const SHORTS_JOB_NAME = 'generate';

/**
 * Enqueue options: the job id as BullMQ id (idempotent add), retries with exponential backoff, and how long
 * BullMQ keeps finished entries (the database row is the record; these are for inspection).
 */
export function shortsJobOptions(jobId: string, attempts: number): JobsOptions {
  return {
    jobId,
    attempts,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/**
 * Object-storage layout of one job. An upload: uploads/<id>/info.json (size, metadata),
 * uploads/<id>/parts/<offset> (one object per PATCH), then uploads/<id>/source (the parts concatenated,
 * which the worker reads). A result: results/<id>/shorts.zip (a rerun overwrites the same key, so retries
 * are idempotent).
 */
export const shortsKeys = {
  uploadPrefix: (id: string) => `uploads/${id}/`,
  uploadInfo: (id: string) => `uploads/${id}/info.json`,
  uploadParts: (id: string) => `uploads/${id}/parts/`,
  source: (id: string) => `uploads/${id}/source`,
  result: (id: string) => `results/${id}/shorts.zip`,
} as const;
