/**
 * Requests Node's HTTP parser rejects before Fastify sees them (an unknown method, a malformed request
 * line, Content-Length and Transfer-Encoding together, headers over the size limit) still answer in the
 * project's JSON error shape, with a fresh request id, like every other 4xx.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { toErrorBody } from './error.filter.js';

export function clientErrorHandler(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are over the size limit']
        : [400, 'bad_request', 'the request is not valid HTTP/1.1'];
  const requestId = randomUUID();
  const body = JSON.stringify({ error: { status, code, message, requestId } });
  // Like Node's own handler: never write into a response that has already started on this socket.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    // The answer to a HEAD has no body (its client would read one as a second, broken response).
    const isHead = err.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${isHead ? '' : body}`,
    );
  }
  socket.destroy();
}

/**
 * Fastify's router rejects some URLs before any hook or Nest runs (a malformed percent-encoding: 400,
 * a route parameter over maxParamLength: 414). Its own answer has another shape; this gives them ours.
 */
export function frameworkErrors(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toErrorBody(error, request.id);
  void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
}
