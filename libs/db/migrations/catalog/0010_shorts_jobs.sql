-- Shorts jobs (issue 7): the source of truth for "My page". One row per completed upload; its id is the
-- tus upload id and the BullMQ job id, so a repeated completion can neither create a second row nor a
-- second queue entry. Progress columns are written only by the single progress consumer, guarded by
-- last_event_id (fixed-width Redis stream id) so a replayed or reordered event never moves a job back.

CREATE TABLE shorts_jobs (
  id            CHAR(32)         NOT NULL,
  user_id       BIGINT UNSIGNED  NOT NULL,
  file_name     VARCHAR(255)     NOT NULL,
  size_bytes    BIGINT UNSIGNED  NOT NULL,
  source_key    VARCHAR(255)     NOT NULL,
  status        ENUM('QUEUED','DOWNLOADING','GENERATING','STORING','DONE','FAILED','RETRYING') NOT NULL DEFAULT 'QUEUED',
  progress      TINYINT UNSIGNED NOT NULL DEFAULT 0,
  reason        VARCHAR(500)     NULL,
  result_key    VARCHAR(255)     NULL,
  attempt       INT UNSIGNED     NOT NULL DEFAULT 0,
  last_event_id VARCHAR(24)      NOT NULL DEFAULT '',
  created_at    DATETIME(3)      NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at    DATETIME(3)      NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_shorts_jobs_user_created (user_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
