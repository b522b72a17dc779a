/**
 * Fixtures written with plain SQL on the primary carry no consistency token, so an API read (which may go to
 * a replica) can miss them for the few ms replication takes. A test that means "after the replicas caught
 * up" waits for exactly that, instead of sleeping or polling the assertion.
 */
import type { DbNodes } from '#libs/db';

/** Waits until every connected replica has applied everything the primary has written so far. */
export async function replicasCaughtUp(nodes: DbNodes, timeoutMs = 10000): Promise<void> {
  const position = await nodes.primary.dialect.gtidPosition(nodes.primary.ds);
  for (const replica of nodes.replicas.filter((r) => r.ds.isInitialized)) {
    if (!(await replica.dialect.waitForGtid(replica.ds, position, timeoutMs))) throw new Error(`${replica.name} did not apply ${position} within ${timeoutMs} ms`);
  }
}
