# Runs once, on the first start of mysql-primary only (sourced by the image's entrypoint: keep mode 644).
# Replication account. MySQL 8.4 no longer loads mysql_native_password, so it uses the default
# caching_sha2_password; replicas connect without TLS and therefore fetch the primary's RSA key
# (GET_SOURCE_PUBLIC_KEY=1 in docker/compose/replica-setup.sh). It can read the whole binlog, so its
# password comes from the environment like every other one.
case "${MALLSCALE_REPL_PASSWORD:-}" in
  '') echo "02-repl-user.sh: MALLSCALE_REPL_PASSWORD is not set" >&2; exit 1 ;;
  *\'* | *\\*) echo "02-repl-user.sh: MALLSCALE_REPL_PASSWORD must not contain quotes or backslashes (use: openssl rand -hex 24)" >&2; exit 1 ;;
esac

docker_process_sql <<SQL
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED WITH caching_sha2_password BY '${MALLSCALE_REPL_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';
SQL
