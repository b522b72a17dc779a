-- The reservation log: every stock decrement an order attempt makes is recorded here, in the SAME transaction
-- as the decrement, so stock taken by an attempt that never wrote its order (a crash between the catalog and
-- the shard) can be found and given back. reservation_id is the order id the attempt will write on its shard
-- (user_id + idem_key name the idempotency key that fences it). A row moves reserved -> committed (the order
-- exists) or reserved -> released (it never will), exactly once: every transition is a conditional UPDATE on
-- state = 'reserved', and stock is only given back by the UPDATE that won that transition.

CREATE TABLE stock_reservations (
  reservation_id BIGINT UNSIGNED NOT NULL,
  product_id     BIGINT UNSIGNED NOT NULL,
  user_id        BIGINT UNSIGNED NOT NULL,
  idem_key       VARCHAR(64)     NOT NULL,
  quantity       INT UNSIGNED    NOT NULL,
  state          VARCHAR(10)     NOT NULL,
  created_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  settled_at     DATETIME(3)     NULL,
  PRIMARY KEY (reservation_id, product_id),
  KEY ix_reservations_state_created (state, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
