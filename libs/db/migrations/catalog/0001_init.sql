-- Catalog database (primary; replicas receive it through GTID replication).
-- Users, categories with their attribute schemas, products with a JSON attribute document,
-- and the bucket -> shard map used by OrderShardRouter.

CREATE TABLE users (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  email         VARCHAR(254)    NOT NULL,
  password_hash VARCHAR(255)    NOT NULL,
  role          ENUM('user','admin') NOT NULL DEFAULT 'user',
  created_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE categories (
  id               INT UNSIGNED NOT NULL AUTO_INCREMENT,
  code             VARCHAR(64)  NOT NULL,
  name             VARCHAR(200) NOT NULL,
  attribute_schema JSON         NOT NULL,
  created_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_categories_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE products (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  category_id INT UNSIGNED    NOT NULL,
  name        VARCHAR(300)    NOT NULL,
  price_cents INT UNSIGNED    NOT NULL,
  stock       INT             NOT NULL DEFAULT 0,
  attributes  JSON            NOT NULL,
  version     INT UNSIGNED    NOT NULL DEFAULT 1,
  created_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_products_category_price (category_id, price_cents, id),
  CONSTRAINT fk_products_category FOREIGN KEY (category_id) REFERENCES categories (id),
  CONSTRAINT ck_products_stock CHECK (stock >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- 1024 logical buckets; a user's bucket is a stable hash of the user id, the bucket's shard is this row.
-- Adding a shard moves rows here (and the buckets' data), it never rehashes users.
CREATE TABLE shard_buckets (
  bucket     SMALLINT UNSIGNED NOT NULL,
  shard      SMALLINT UNSIGNED NOT NULL,
  updated_at DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (bucket)
) ENGINE=InnoDB;
