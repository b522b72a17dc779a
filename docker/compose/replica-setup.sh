#!/bin/sh
# One-shot bootstrap of GTID replication: mysql-primary -> mysql-replica-1, mysql-replica-2.
# Run by the compose service `replica-setup` (image mysql:8.4, for its mysql client). Idempotent:
# on every `docker compose up` it re-checks each replica and changes only what is missing.
# MySQL only, like the compose stack: its statements are the `mysql` column of libs/db/src/dialect-sql.js
# (the one home of what differs from MariaDB), written out here because the image has a shell and a mysql
# client but no Node to import that module.
#
# Why the replicas start empty (compose gives them only MYSQL_ROOT_PASSWORD and
# MYSQL_INITDB_SKIP_TZINFO=1, no MYSQL_USER / MYSQL_DATABASE, no init SQL):
#   With SOURCE_AUTO_POSITION=1 a replica asks the primary for every transaction missing from its
#   own gtid_executed, so on first connect it replays the primary's whole history: the time zone
#   tables, CREATE DATABASE mallscale, the app/ddl/monitor accounts and their grants, the repl user
#   (docker/mysql/init/*.sh). That is how the accounts and database get onto the replicas, identical
#   to the primary's.
#   If a replica also created them locally, those statements would get GTIDs of the replica's own
#   server_uuid (errant transactions: a replica holding writes the primary never had, which breaks
#   any later promotion/failover) and, worse, replaying the primary's CREATE USER 'mallscale_app' would
#   fail with "Operation CREATE USER failed" (1396) and stop the SQL thread on the spot.
#   The image's own first-start work on a replica is safe: it sets the root password with
#   SQL_LOG_BIN=0 (no GTID), and MYSQL_INITDB_SKIP_TZINFO=1 stops it loading time zone tables
#   locally (mysql_tzinfo_to_sql output would be binlogged with local GTIDs; the primary's copy
#   arrives through replication instead). So a fresh replica's gtid_executed is empty and it is an
#   exact copy of the primary once it has caught up; this script warns if that is not so.
#
# Why read_only/super_read_only are set here and not in docker/mysql/replica.cnf: the image's
# entrypoint initializes the data directory with a temporary server that reads the same option
# files, and super_read_only would refuse its ALTER USER for root. SET PERSIST stores the values in
# the data volume (mysqld-auto.cnf), so they hold on every later start. super_read_only (not just
# read_only) also stops root and any other account with CONNECTION_ADMIN/SUPER, which bypass plain
# read_only; replication's own applier threads are exempt from both.
set -eu

PRIMARY_HOST="${PRIMARY_HOST:-mysql-primary}"
REPLICA_HOSTS="${REPLICA_HOSTS:-mysql-replica-1 mysql-replica-2}"
TIMEOUT="${SETUP_TIMEOUT_SECONDS:-180}"
: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set}"
: "${MALLSCALE_REPL_PASSWORD:?MALLSCALE_REPL_PASSWORD must be set}"

# Root credentials in a client option file (MYSQL_PWD is deprecated; -p on the command line warns).
CNF="$(mktemp)"
trap 'rm -f "$CNF"' EXIT
printf '[client]\nuser=root\npassword="%s"\nprotocol=TCP\nport=3306\nconnect_timeout=5\n' \
  "$MYSQL_ROOT_PASSWORD" >"$CNF"

log() { echo "replica-setup: $*"; }
die() { echo "replica-setup: ERROR: $*" >&2; exit 1; }
case "$MALLSCALE_REPL_PASSWORD" in *\'* | *\\*) die "MALLSCALE_REPL_PASSWORD must not contain quotes or backslashes" ;; esac

# sql HOST STATEMENT -> tab-separated rows, no column names
sql() { mysql --defaults-extra-file="$CNF" -h "$1" -N -B -e "$2"; }

# field HOST NAME -> one field of SHOW REPLICA STATUS (vertical output: "   Name: value")
field() {
  mysql --defaults-extra-file="$CNF" -h "$1" -E -e 'SHOW REPLICA STATUS' \
    | awk -v k="$2" '{ key = $1; sub(/:$/, "", key) } key == k { sub(/^[^:]*: ?/, ""); print; exit }'
}

wait_for_server() {
  i=0
  until sql "$1" 'SELECT 1' >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt "$TIMEOUT" ] || die "$1 did not accept connections within ${TIMEOUT}s"
    sleep 1
  done
  log "$1 is up"
}

wait_for_server "$PRIMARY_HOST"
for r in $REPLICA_HOSTS; do wait_for_server "$r"; done

for r in $REPLICA_HOSTS; do
  sql "$r" 'SET PERSIST read_only = ON; SET PERSIST super_read_only = ON'

  current="$(sql "$r" "SELECT HOST FROM performance_schema.replication_connection_configuration WHERE CHANNEL_NAME = ''")"
  if [ "$current" = "$PRIMARY_HOST" ]; then
    log "$r: already replicating from $PRIMARY_HOST"
  else
    primary_set="$(sql "$PRIMARY_HOST" "SELECT REPLACE(@@GLOBAL.gtid_executed, '\n', '')")"
    if [ "$(sql "$r" "SELECT GTID_SUBSET(@@GLOBAL.gtid_executed, '$primary_set')")" != 1 ]; then
      log "WARNING: $r has transactions the primary does not have (errant GTIDs):" \
        "$(sql "$r" "SELECT REPLACE(@@GLOBAL.gtid_executed, '\n', '')")"
    fi
    if [ -n "$current" ]; then sql "$r" 'STOP REPLICA'; fi
    log "$r: CHANGE REPLICATION SOURCE TO $PRIMARY_HOST (auto-position)"
    sql "$r" "CHANGE REPLICATION SOURCE TO SOURCE_HOST='$PRIMARY_HOST', SOURCE_PORT=3306,
      SOURCE_USER='repl', SOURCE_PASSWORD='$MALLSCALE_REPL_PASSWORD', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1"
  fi
  # Harmless when the threads already run (a note, not an error).
  sql "$r" 'START REPLICA'
done

for r in $REPLICA_HOSTS; do
  i=0
  while :; do
    io="$(field "$r" Replica_IO_Running)"
    st="$(field "$r" Replica_SQL_Running)"
    [ "$io" = Yes ] && [ "$st" = Yes ] && break
    sql_errno="$(field "$r" Last_SQL_Errno)"
    i=$((i + 1))
    if [ "$i" -ge "$TIMEOUT" ] || { [ "$st" = No ] && [ "${sql_errno:-0}" != 0 ]; }; then
      die "$r: Replica_IO_Running=$io Replica_SQL_Running=$st
  Last_IO_Error: $(field "$r" Last_IO_Error)
  Last_SQL_Error: $(field "$r" Last_SQL_Error)
  (stale volumes from an earlier primary? 'docker compose down -v' starts the databases afresh)"
    fi
    sleep 1
  done
  log "$r: Replica_IO_Running=Yes Replica_SQL_Running=Yes"
done

# Catch up with everything the primary has now (user, database, grants) before the app connects.
primary_set="$(sql "$PRIMARY_HOST" "SELECT REPLACE(@@GLOBAL.gtid_executed, '\n', '')")"
for r in $REPLICA_HOSTS; do
  [ "$(sql "$r" "SELECT WAIT_FOR_EXECUTED_GTID_SET('$primary_set', $TIMEOUT)")" = 0 ] \
    || die "$r did not apply the primary's transactions within ${TIMEOUT}s"
  log "$r: caught up with $PRIMARY_HOST"
done
log "done"
