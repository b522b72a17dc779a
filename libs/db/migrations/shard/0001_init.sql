-- Order shard database (one per physical shard, same schema everywhere).
-- Orders and their items live together on the user's shard: no cross-shard joins, products are referenced
-- by id with the price snapshotted. Both tables are RANGE-partitioned by month on created_at; the
-- PartitionMaintainer splits the catch-all `pmax` into months ahead of time. Partitioned InnoDB tables
-- cannot have foreign keys and every unique key must contain created_at, hence PRIMARY KEY (id, created_at):
-- created_at is derived from the time bits of the id, so a lookup by id alone still prunes to one month.

CREATE TABLE orders (
  id          BIGINT UNSIGNED   NOT NULL,
  user_id     BIGINT UNSIGNED   NOT NULL,
  bucket      SMALLINT UNSIGNED NOT NULL,
  status      VARCHAR(16)       NOT NULL,
  total_cents BIGINT UNSIGNED   NOT NULL,
  item_count  INT UNSIGNED      NOT NULL,
  created_at  DATETIME(3)       NOT NULL,
  PRIMARY KEY (id, created_at),
  KEY ix_orders_user_created (user_id, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (created_at) (
  PARTITION pmax VALUES LESS THAN (MAXVALUE)
);

CREATE TABLE order_items (
  order_id         BIGINT UNSIGNED   NOT NULL,
  line_no          SMALLINT UNSIGNED NOT NULL,
  product_id       BIGINT UNSIGNED   NOT NULL,
  quantity         INT UNSIGNED      NOT NULL,
  unit_price_cents INT UNSIGNED      NOT NULL,
  created_at       DATETIME(3)       NOT NULL,
  PRIMARY KEY (order_id, line_no, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
PARTITION BY RANGE COLUMNS (created_at) (
  PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
