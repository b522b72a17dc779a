-- Each shard knows its own name: its position in DB_SHARD_URLS, written by the migrator on the first
-- migrate (INSERT IGNORE: never overwritten). Start-up compares every configured shard with it, so a list
-- in another order stops the API instead of routing users' orders to another shard's database.

CREATE TABLE shard_identity (
  id         TINYINT UNSIGNED  NOT NULL PRIMARY KEY,
  shard      SMALLINT UNSIGNED NOT NULL,
  created_at DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  CONSTRAINT ck_shard_identity_one_row CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
