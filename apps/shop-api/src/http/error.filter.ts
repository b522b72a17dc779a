/**
 * One error shape for every failure: { error: { status, code, message, details?, requestId } }.
 * Known errors keep their status; anything unexpected is logged with its stack and answered as a bare
 * 500 — clients never see a stack trace or a driver message.
 */
import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, safeErr, type ErrorBody, type Logger } from '#libs/core';
import { isPrimaryChanging } from '#libs/db';

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'validation_failed',
  429: 'too_many_requests',
  503: 'unavailable',
};

export function toErrorBody(err: unknown, requestId?: string): { status: number; body: ErrorBody; unexpected: boolean } {
  let status = 500;
  let code = 'internal_error';
  let message = 'internal error';
  let details: unknown;
  let unexpected = false;
  if (err instanceof ApiError) {
    ({ status, code, message, details } = err);
  } else if (err instanceof HttpException) {
    status = err.getStatus();
    code = CODES[status] ?? `http_${status}`;
    const res = err.getResponse() as any;
    if (typeof res === 'string') message = res;
    else {
      message = Array.isArray(res?.message) ? 'request validation failed' : (res?.message ?? err.message);
      if (Array.isArray(res?.message)) details = res.message;
      if (res?.details) details = res.details;
    }
  } else if (typeof (err as any)?.statusCode === 'number' && (err as any).statusCode >= 400 && (err as any).statusCode < 500) {
    // Fastify's own errors (bad JSON body, body too large, bad content type).
    status = (err as any).statusCode;
    code = CODES[status] ?? `http_${status}`;
    message = String((err as any).message ?? code).replace(/^FST_\w+: /, '');
  } else {
    unexpected = true;
  }
  return { status, body: { error: { status, code, message, ...(details !== undefined ? { details } : {}), requestId } }, unexpected };
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(err: unknown, host: ArgumentsHost): void {
    // A catalog write outside ReplicaRouter.write that met a read-only or dead primary (switchover/failover,
    // docs/q3-replication.md): retryable, like the router's own 503, not an internal error.
    if (!(err instanceof ApiError) && !(err instanceof HttpException) && isPrimaryChanging(err)) {
      const unavailable = new ApiError(503, 'unavailable', 'the database is unreachable or changing primary; retry shortly', undefined, { cause: err });
      unavailable.headers = { 'retry-after': '1' };
      err = unavailable;
    }
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    const { status, body, unexpected } = toErrorBody(err, req?.id);
    // Details go to the log with the request id, through safeErr (a failed query's bound values stay out).
    if (unexpected) this.logger.error({ err: safeErr(err), reqId: req?.id, url: req?.url }, 'unhandled error');
    else if (err instanceof ApiError && err.cause !== undefined) {
      this.logger.warn({ err: safeErr(err.cause), code: err.code, status, reqId: req?.id, url: req?.url }, `request failed: ${err.code}`);
    }
    if (reply.sent) return;
    if (err instanceof ApiError && err.headers) void reply.headers(err.headers);
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}
