import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * A token in a query string (`?token=`, `&access_token=`) is a credential: EventSource cannot send headers,
 * so event-stream tokens travel in the URL, and URLs reach logs through many fields (Fastify's request
 * lines, error logs, messages). Redacting the finished line covers every field, present and future.
 */
const QUERY_TOKEN = /([?&][^=&"\\\s]*token=)[^&"\\\s#]*/gi;

export function redactQueryTokens(text: string): string {
  return text.replace(QUERY_TOKEN, '$1[redacted]');
}

/** `destination` defaults to stdout; tests pass their own stream to read what would be logged. */
export function createLogger(level: string, name = 'mallscale', destination: DestinationStream = pino.destination(1)): Logger {
  const redacting: DestinationStream = { write: (line: string) => destination.write(redactQueryTokens(line)) };
  return pino({ level, name, base: { pid: process.pid }, redact: ['req.headers.authorization', 'req.headers.cookie'] }, redacting);
}
export type { Logger };
