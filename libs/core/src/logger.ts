import { pino, type Logger } from 'pino';

export function createLogger(level: string, name = 'mallscale'): Logger {
  return pino({ level, name, base: { pid: process.pid }, redact: ['req.headers.authorization', 'req.headers.cookie'] });
}
export type { Logger };
