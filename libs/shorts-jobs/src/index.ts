export * from './shorts-job.js';
export * from './job-progress.js';
