-- Online resharding (docs/q3b-sharding-cautions.md, ADR 0014). The bucket map gets a version, bumped in the
-- same transaction that flips buckets, so a router knows its map is old; shard_moves is the mover's state,
-- one row per bucket being moved, so `npm run shards -- move` resumes after a crash at any step.

CREATE TABLE shard_map_version (
  id         TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  version    BIGINT UNSIGNED  NOT NULL,
  updated_at DATETIME(3)      NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  CONSTRAINT ck_shard_map_version_one_row CHECK (id = 1)
) ENGINE=InnoDB;

INSERT INTO shard_map_version (id, version) VALUES (1, 1);

-- state: copying -> copied -> verified -> cutover -> moved -> cleaned (a later move of the bucket replaces a
-- cleaned row). copy_cursor: the last order id copied (keyset); high_water: the copy's last id when it was
-- verified (the cut-over re-checks everything after it).
CREATE TABLE shard_moves (
  bucket       SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  from_shard   SMALLINT UNSIGNED NOT NULL,
  to_shard     SMALLINT UNSIGNED NOT NULL,
  state        VARCHAR(10)       NOT NULL,
  copy_cursor  BIGINT UNSIGNED   NOT NULL DEFAULT 0,
  high_water   BIGINT UNSIGNED   NOT NULL DEFAULT 0,
  rows_copied  BIGINT UNSIGNED   NOT NULL DEFAULT 0,
  map_version  BIGINT UNSIGNED   NULL,
  pause_ms     INT UNSIGNED      NULL,
  started_at   DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at   DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  moved_at     DATETIME(3)       NULL,
  cleaned_at   DATETIME(3)       NULL
) ENGINE=InnoDB;
