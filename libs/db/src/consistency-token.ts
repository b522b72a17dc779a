/**
 * ConsistencyToken: read-your-writes across async replicas.
 *
 * A write on the primary returns the GTID it produced (MariaDB @@last_gtid / MySQL session-tracked GTID);
 * the client sends it back on later reads (X-Consistency-Token), and ReplicaRouter only reads from a
 * replica that has applied it (waiting a few ms on that replica), else from the primary. The token is the
 * raw GTID text, so anyone can check it against `SHOW SLAVE STATUS` by eye.
 * Trade-off: a token read may cost one extra round trip (the wait) and, under lag, a primary read; reads
 * without a token stay as cheap as a naive router's.
 *
 * ConsistencyScope carries the caller's token through one HTTP request (AsyncLocalStorage), so services
 * do not have to thread it through every call: the router reads the token from the scope and records the
 * token of every write into it; the HTTP layer fills the scope from the header and answers with it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { SqlDialect } from './dialect.js';

export class InvalidConsistencyToken extends Error {
  override name = 'InvalidConsistencyToken';
  /** The stable error code a client sees. */
  readonly code: string = 'bad_request';
}

/**
 * A well-formed token naming writes the primary has not made (forged, or from before a primary was
 * rebuilt). Honoured, it would make every read wait on a replica for REPLICA_WAIT_MS and then go to the
 * primary; ReplicaRouter.acceptToken refuses it instead.
 */
export class TokenAheadOfPrimary extends InvalidConsistencyToken {
  override name = 'TokenAheadOfPrimary';
  override readonly code = 'invalid_consistency_token';
}

export class ConsistencyToken {
  private constructor(readonly gtid: string) {}

  /** Parse a client-supplied token; throws InvalidConsistencyToken when it is not a GTID position of `dialect`. */
  static parse(raw: string, dialect: SqlDialect): ConsistencyToken {
    const text = raw.trim();
    if (text.length > 2048 || !dialect.isGtid(text)) {
      throw new InvalidConsistencyToken(`X-Consistency-Token must be a ${dialect.name === 'mariadb' ? 'MariaDB GTID position (domain-server-seq)' : 'MySQL GTID set (uuid:interval)'} as returned by a write`);
    }
    return new ConsistencyToken(text);
  }

  /** A token from a GTID the server just reported (trusted). Empty GTID -> null (nothing to wait for). */
  static of(gtid: string): ConsistencyToken | null {
    return gtid ? new ConsistencyToken(gtid) : null;
  }

  /** The newer of two tokens (a position covering both). */
  static merge(dialect: SqlDialect, a: ConsistencyToken | null | undefined, b: ConsistencyToken | null | undefined): ConsistencyToken | null {
    if (!a) return b ?? null;
    if (!b) return a;
    return new ConsistencyToken(dialect.mergeGtids(a.gtid, b.gtid));
  }

  /** Has a node whose applied position is `position` seen this token's write? */
  isCoveredBy(dialect: SqlDialect, position: string): boolean {
    return !!position && dialect.gtidCovers(position, this.gtid);
  }

  toString(): string {
    return this.gtid;
  }
}

export interface ConsistencyState {
  /** What the caller has seen (header or remembered per user); reads must not go back before it. */
  token: ConsistencyToken | null;
  /** Set by ReplicaRouter.write: the newest write of this request. */
  written: ConsistencyToken | null;
}

const storage = new AsyncLocalStorage<ConsistencyState>();

export const ConsistencyScope = {
  run<T>(state: ConsistencyState, fn: () => T): T {
    return storage.run(state, fn);
  },
  current(): ConsistencyState | undefined {
    return storage.getStore();
  },
};
