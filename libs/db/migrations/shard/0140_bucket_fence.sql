-- Online resharding (ADR 0014). bucket_fence: what this shard may do with a bucket. No row = owned (every
-- bucket before its first move). A write transaction reads its bucket's row with a shared lock first; the
-- mover's freeze (an UPDATE) waits for writes in flight and makes every later one see it:
--   owned    reads and writes (logging = 1 while the bucket is being copied away: writes record a change row)
--   incoming the mover is copying the bucket here: refused, retryable (no router names this shard yet)
--   frozen   the cut-over is copying the last delta: reads yes, writes refused, retryable
--   moved    the bucket lives elsewhere (map_version says since which map): refused, retryable, re-route
-- bucket_changes: the orders written to a logging bucket during its copy (the catch-up copies the ones the
-- target lacks); a set, not a stream, so a transaction that commits late is never skipped.

CREATE TABLE bucket_fence (
  bucket      SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  state       VARCHAR(8)        NOT NULL,
  logging     TINYINT UNSIGNED  NOT NULL DEFAULT 0,
  map_version BIGINT UNSIGNED   NOT NULL DEFAULT 0,
  updated_at  DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

CREATE TABLE bucket_changes (
  seq        BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT PRIMARY KEY,
  bucket     SMALLINT UNSIGNED NOT NULL,
  order_id   BIGINT UNSIGNED   NOT NULL,
  created_at DATETIME(3)       NOT NULL,
  user_id    BIGINT UNSIGNED   NOT NULL,
  idem_key   VARCHAR(64)       NOT NULL,
  KEY ix_bucket_changes_bucket (bucket, order_id)
) ENGINE=InnoDB;

-- The mover's keyset copy and per-bucket counts walk a bucket by id.
ALTER TABLE orders ADD KEY ix_orders_bucket (bucket, id);
