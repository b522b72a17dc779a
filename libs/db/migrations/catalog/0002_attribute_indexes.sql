-- Category attributes (docs/q1b-category-attributes.md).
-- attribute_indexes: which declared attributes are indexed, how, and whether the index is usable yet.
--   storage 'column' = a VIRTUAL generated column attr_<category>_<name> on products + index
--                      (category_id, column), added online by AttributePromoter;
--   storage 'values' = array attributes (allergens): one row per value in product_attribute_values,
--                      because MariaDB has no multi-valued index.
--   state 'building' while the DDL / backfill runs; filters use only 'ready' rows.
CREATE TABLE attribute_indexes (
  category_id INT UNSIGNED NOT NULL,
  attribute   VARCHAR(64)  NOT NULL,
  storage     ENUM('column','values') NOT NULL,
  state       ENUM('building','ready') NOT NULL DEFAULT 'building',
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (category_id, attribute),
  CONSTRAINT fk_attribute_indexes_category FOREIGN KEY (category_id) REFERENCES categories (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Array attribute values, written in the same transaction as the product (ProductAttributes.write).
-- The primary key is the filter's access path: contains=peanut is one index range.
CREATE TABLE product_attribute_values (
  category_id INT UNSIGNED    NOT NULL,
  attribute   VARCHAR(64)     NOT NULL,
  value       VARCHAR(191)    NOT NULL,
  product_id  BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (category_id, attribute, value, product_id),
  KEY ix_product_attribute_values_product (product_id),
  CONSTRAINT fk_product_attribute_values_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
