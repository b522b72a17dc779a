-- Shorts jobs get a stable failure code next to the user-facing sentence (clients branch on the code, the
-- sentence may change), and the retention sweeper marks what it deleted: the row stays (My page still
-- lists the job), the source and the result are gone. The index serves the sweeper's scan of old
-- finished jobs per queue.

ALTER TABLE shorts_jobs
  ADD COLUMN reason_code VARCHAR(40) NULL AFTER reason,
  ADD COLUMN source_expired_at DATETIME(3) NULL AFTER result_key,
  ADD COLUMN result_expired_at DATETIME(3) NULL AFTER source_expired_at;
CREATE INDEX ix_shorts_jobs_queue_status_updated ON shorts_jobs (queue, status, updated_at);
