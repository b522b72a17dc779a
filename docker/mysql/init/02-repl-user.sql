-- Runs once, on the first start of mysql-primary only.
-- Replication account. MySQL 8.4 no longer loads mysql_native_password, so it uses the default
-- caching_sha2_password; replicas connect without TLS and therefore fetch the primary's RSA key
-- (GET_SOURCE_PUBLIC_KEY=1 in docker/compose/replica-setup.sh).
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED WITH caching_sha2_password BY 'repl';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';
