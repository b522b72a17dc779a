import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

/**
 * A token in a query string (`?token=`, `&access_token=`) is a credential: EventSource cannot send headers,
 * so event-stream tokens travel in the URL, and URLs reach logs through many fields (Fastify's request
 * lines, error logs, messages). Redacting the finished line covers every field, present and future.
 */
const QUERY_TOKEN = /([?&][^=&"\\\s]*token=)[^&"\\\s#]*/gi;

export function redactQueryTokens(text: string): string {
  return text.replace(QUERY_TOKEN, '$1[redacted]');
}

/**
 * An error as it may appear in a log line. A failed query's error (TypeORM QueryFailedError, mysql2's
 * error) carries the bound values twice: `parameters`, and `sql` with the values spliced in; for a
 * sign-up that is a password hash. The statement text with its `?` placeholders stays (that is what a
 * reader needs), the values do not.
 */
export function safeErr(err: unknown): unknown {
  if (!err || typeof err !== 'object') return err;
  // Never mutate the caller's object: serialise (an Error) or copy (anything else) first.
  const out = (err instanceof Error ? stdSerializers.err(err) : { ...(err as object) }) as unknown as Record<string, unknown>;
  scrubQuery(out);
  return out;
}

function scrubQuery(o: Record<string, unknown>, depth = 0): void {
  if (Array.isArray(o.parameters)) o.parameters = `[${o.parameters.length} values redacted]`;
  else if (o.parameters !== undefined) o.parameters = '[redacted]';
  if (typeof o.sql === 'string') o.sql = typeof o.query === 'string' ? o.query : '[redacted: statement with values]';
  for (const k of ['driverError', 'cause', 'originalError']) {
    const inner = o[k];
    if (inner && typeof inner === 'object' && depth < 3) {
      const copy = { ...(inner as Record<string, unknown>) };
      if (inner instanceof Error) Object.assign(copy, { type: inner.name, message: inner.message });
      if (typeof copy.sql === 'string') copy.sql = typeof o.query === 'string' ? o.query : '[redacted: statement with values]';
      scrubQuery(copy, depth + 1);
      o[k] = copy;
    }
  }
}

/** `destination` defaults to stdout; tests pass their own stream to read what would be logged. */
export function createLogger(level: string, name = 'mallscale', destination: DestinationStream = pino.destination(1)): Logger {
  const redacting: DestinationStream = { write: (line: string) => destination.write(redactQueryTokens(line)) };
  const options = {
    level,
    name,
    base: { pid: process.pid },
    redact: ['req.headers.authorization', 'req.headers.cookie'],
    serializers: { err: safeErr, error: safeErr },
  };
  return pino(options, redacting);
}
export type { Logger };

/** The Nest injection token of the process's pino logger (one per app, provided by its root module). */
export const LOGGER = Symbol('LOGGER');
