# Runs once, on the first start of mysql-primary and of each shard: the image's entrypoint *sources* every
# docker-entrypoint-initdb.d/*.sh that is not executable (keep this file mode 644), which gives it
# docker_process_sql, connected as root to the temporary init server. On the primary these statements are
# binlogged, so the replicas get the accounts through replication (docker/compose/replica-setup.sh).
#
# Least privilege, the same accounts as the native stack (docker/local/stack.mjs):
#   mallscale_app      DML only: what shop-api and shorts-worker connect with (DB_*_URLS);
#   mallscale_ddl      + CREATE/DROP/ALTER/INDEX/REFERENCES: migrations, partition maintenance, attribute
#                      promotion (DB_DDL_USER / DB_DDL_PASSWORD);
#   mallscale_monitor  REPLICATION CLIENT only, no schema: replica monitor and /health (DB_MONITOR_*).
# Schemas: `mallscale` and the test schema `mallscale\_test` (`_` escaped: in a GRANT it is a wildcard).
# Passwords come from the environment (compose refuses to start without them); none is written here.
for v in MALLSCALE_APP_PASSWORD MALLSCALE_DDL_PASSWORD MALLSCALE_MONITOR_PASSWORD; do
  eval "p=\${$v:-}"
  case "$p" in
    '') echo "01-accounts.sh: $v is not set" >&2; exit 1 ;;
    *\'* | *\\*) echo "01-accounts.sh: $v must not contain quotes or backslashes (use: openssl rand -hex 24)" >&2; exit 1 ;;
  esac
done

docker_process_sql <<SQL
CREATE USER 'mallscale_app'@'%' IDENTIFIED BY '${MALLSCALE_APP_PASSWORD}';
CREATE USER 'mallscale_ddl'@'%' IDENTIFIED BY '${MALLSCALE_DDL_PASSWORD}';
CREATE USER 'mallscale_monitor'@'%' IDENTIFIED BY '${MALLSCALE_MONITOR_PASSWORD}';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`mallscale\`.* TO 'mallscale_app'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`mallscale\_test\`.* TO 'mallscale_app'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`mallscale\`.* TO 'mallscale_ddl'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`mallscale\_test\`.* TO 'mallscale_ddl'@'%';
GRANT REPLICATION CLIENT ON *.* TO 'mallscale_monitor'@'%';
SQL
