/**
 * A deadline for a promise that takes no AbortSignal (a driver call, a Redis command): rejects with
 * "<what>: no answer within <ms> ms" when `p` has not settled by then. The timer is cleared when `p`
 * settles and never keeps the process alive. (Where the API takes a signal, use AbortSignal.timeout.)
 * The late result of `p` is ignored, not cancelled: the caller's pool or client owns that.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
