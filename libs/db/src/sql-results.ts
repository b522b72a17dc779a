/**
 * What every repository needs from a write's result and from InnoDB's deadlock answer, in one place.
 */

/** Rows a write changed: mysql2's ResultSetHeader.affectedRows, or TypeORM's [rows, affected] pair. */
export function affectedRows(res: unknown): number {
  const r = res as { affectedRows?: number } & unknown[];
  return Number(r?.affectedRows ?? r?.[1] ?? 0);
}

/** The server error number of a driver error, also when TypeORM wraps it (QueryFailedError.driverError). */
export function sqlErrno(e: unknown): number | undefined {
  const err = e as { errno?: number; driverError?: { errno?: number } };
  return err?.errno ?? err?.driverError?.errno;
}

/**
 * Re-runs a write transaction the server chose as a deadlock victim (errno 1213), up to `attempts` times.
 * InnoDB row-lock cycles and metadata-lock cycles with an online ALTER (the attribute promoter's ADD
 * COLUMN / INDEX also locks the categories table through the foreign key) both end this way; the
 * documented answer is to retry the whole transaction, after a short jittered pause.
 */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (sqlErrno(e) !== 1213 || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 10));
    }
  }
}
