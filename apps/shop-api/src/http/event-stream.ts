/**
 * Server-Sent Events framing, the one place both streaming routes (a shorts job's progress, the console's
 * snapshots) write it. The response is taken from Fastify (hijack): it stays open for minutes, never cached,
 * never buffered by a proxy (x-accel-buffering), and a dropped client reconnects after 2 s (`retry`).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Hijack the reply and send the event-stream head; returns the raw response to write events to. */
export function openEventStream(req: FastifyRequest, reply: FastifyReply): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(req.id),
  });
  raw.write('retry: 2000\n\n');
  return raw;
}

/** One event: its type, JSON data, and (for a resumable stream) the id a client sends back as Last-Event-ID. */
export const sseEvent = (event: string, data: unknown, id?: string) => `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** A comment line: keeps idle connections (and proxies) from timing out. */
export const SSE_HEARTBEAT = ': heartbeat\n\n';
