// The database accounts of the native stack, created on every `up` (idempotent: CREATE USER IF NOT EXISTS and
// GRANT only add, so a running stack gains them without a restart and without a moment in which a running
// test's account lacks a privilege). Replicas get them through the binlog.
import { sql } from './clients.mjs';
import { dialect } from './install.mjs';

/**
 * The least-privilege accounts the app uses (libs/core config defaults). `mallscale%` covers `mallscale` and the
 * test schemas (`mallscale_test`); `%` is the only wildcard in it, so no `_` needs escaping.
 *   app: DML only (GET_LOCK, MASTER_GTID_WAIT, @@gtid reads and session tracking need no privilege);
 *   ddl: migrations, partition maintenance, attribute promotion (DML too: schema_migrations, backfills);
 *   monitor: replication status only, no schema at all.
 */
export const APP_ACCOUNTS = {
  app: { user: 'mallscale_app', password: 'mallscale_app' },
  ddl: { user: 'mallscale_ddl', password: 'mallscale_ddl' },
  monitor: { user: 'mallscale_monitor', password: 'mallscale_monitor' },
};
/** The replication account the replicas log in with (created on the catalog primary). */
export const REPL_ACCOUNT = { user: 'repl', password: 'repl' };

async function ensureAppAccounts(n) {
  const { app, ddl, monitor } = APP_ACCOUNTS;
  const create = (a) => `CREATE USER IF NOT EXISTS '${a.user}'@'%' IDENTIFIED BY '${a.password}'`;
  await sql(n, [
    create(app), create(ddl), create(monitor),
    `GRANT SELECT, INSERT, UPDATE, DELETE ON \`mallscale%\`.* TO '${app.user}'@'%'`,
    `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`mallscale%\`.* TO '${ddl.user}'@'%'`,
    `GRANT ${dialect().monitorPrivilege} ON *.* TO '${monitor.user}'@'%'`,
  ].join(';\n'));
}

/** The app's accounts; first start only: the fixture/admin user (and on the primary the replication user). */
export async function ensureUsers(n) {
  await ensureAppAccounts(n);
  if ((await sql(n, "SELECT COUNT(*) FROM mysql.user WHERE user='mallscale'")) !== '0') return;
  const { readOnlyBypass } = dialect();
  const stmts = ['%', 'localhost'].flatMap((h) => [
    `CREATE USER 'mallscale'@'${h}' IDENTIFIED BY 'mallscale'`,
    `GRANT ALL PRIVILEGES ON *.* TO 'mallscale'@'${h}' WITH GRANT OPTION`,
    // ALL would let the admin user write to read_only replicas where a privilege bypasses read_only.
    ...(readOnlyBypass ? [`REVOKE ${readOnlyBypass} ON *.* FROM 'mallscale'@'${h}'`] : []),
  ]);
  const { user, password } = REPL_ACCOUNT;
  if (n.role === 'primary') stmts.push(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`, `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'@'%'`);
  await sql(n, stmts.join(';\n'));
}
