/**
 * Test-only server controls, per dialect: real, controllable replication lag, and a server-side count of an
 * account's SELECTs (tests count a loader's real queries per dedicated user, immune to other clients).
 * Production code never needs these, so they live here and not in libs/db's SqlDialect.
 */
import type { Queryable, SqlDialect } from '#libs/db';

/** Delayed replication; run with replication stopped. */
export function replicaDelaySql(dialect: SqlDialect, seconds: number): string {
  return dialect.sql.changeSource({ delayS: Math.max(0, Math.floor(seconds)) });
}

/** SELECT statements the server has executed for `user`: MariaDB userstat vs MySQL performance_schema. */
export async function selectCountByUser(dialect: SqlDialect, conn: Queryable, user: string): Promise<number> {
  if (dialect.name === 'mariadb') {
    await conn.query('SET GLOBAL userstat = 1'); // off by default; cheap per-account counters
    const [row] = await conn.query('SELECT SELECT_COMMANDS AS n FROM information_schema.USER_STATISTICS WHERE USER = ?', [user]);
    return Number(row?.n ?? 0);
  }
  const [row] = await conn.query(
    "SELECT COALESCE(SUM(COUNT_STAR), 0) AS n FROM performance_schema.events_statements_summary_by_user_by_event_name WHERE USER = ? AND EVENT_NAME = 'statement/sql/select'",
    [user],
  );
  return Number(row?.n ?? 0);
}
