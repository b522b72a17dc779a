-- Runs once, on the first start of mysql-primary and of each shard (docker-entrypoint-initdb.d),
-- after the image created MYSQL_DATABASE and MYSQL_USER (mallscale/mallscale).
-- The app user gets every privilege so migrations can create `mallscale_test`, archive tables and
-- partitions, and read replication status. On the replicas this grant arrives through replication;
-- super_read_only (set by replica-setup) still keeps this user from writing there.
GRANT ALL ON *.* TO 'mallscale'@'%';
