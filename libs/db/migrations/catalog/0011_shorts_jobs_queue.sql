-- Shorts jobs record the queue they were sent to (issue 7): the enqueue sweeper re-enqueues a QUEUED row
-- whose BullMQ job is missing into THAT queue (one queue per model type later), and instances serving
-- another queue never touch it. The index serves the sweeper's scan of old QUEUED rows per queue.

ALTER TABLE shorts_jobs ADD COLUMN queue VARCHAR(64) NOT NULL DEFAULT 'shorts' AFTER source_key;
CREATE INDEX ix_shorts_jobs_queue_status_created ON shorts_jobs (queue, status, created_at);
