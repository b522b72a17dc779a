/**
 * Read-after-insert for fixtures: a test that writes straight to the primary and then reads through the API
 * (anonymous reads go to a replica) must wait until every replica has applied the write, or the read races
 * replication. The primary's whole GTID position covers the write (and anything before it); each replica
 * waits for it with the dialect's own wait (MariaDB MASTER_GTID_WAIT, MySQL WAIT_FOR_EXECUTED_GTID_SET).
 */
import type { DbNodes } from '#libs/db';

export async function waitForReplicas(db: DbNodes, timeoutMs = 10_000): Promise<void> {
  const position = await db.primary.dialect.gtidPosition(db.primary.ds);
  await Promise.all(
    db.replicas.filter((r) => r.ds.isInitialized).map(async (r) => {
      if (!(await r.dialect.waitForGtid(r.ds, position, timeoutMs))) {
        throw new Error(`replica ${r.name} did not apply the primary's position ${position} within ${timeoutMs} ms`);
      }
    }),
  );
}
