-- Idempotency keys live on the same shard as the user's orders, so the key's completion and the order
-- rows commit in ONE local transaction: a retried POST /orders either finds the finished response or
-- finds nothing, never an order without its key (or the reverse). Not partitioned: small, purged daily
-- by the PartitionMaintainer (keys older than 24 h).

CREATE TABLE idempotency_keys (
  user_id         BIGINT UNSIGNED   NOT NULL,
  idem_key        VARCHAR(64)       NOT NULL,
  request_hash    CHAR(64)          NOT NULL,
  status          VARCHAR(8)        NOT NULL,
  response_status SMALLINT UNSIGNED NULL,
  response_body   MEDIUMTEXT        NULL,
  order_id        BIGINT UNSIGNED   NULL,
  created_at      DATETIME(3)       NOT NULL,
  PRIMARY KEY (user_id, idem_key),
  KEY ix_idempotency_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
