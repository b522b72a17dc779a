/**
 * One JSON error shape for every failure: { error: { status, code, message, details?, requestId } }.
 * Services throw ApiError (or Nest's HttpException); anything else becomes a 500 without a stack trace.
 * `cause` (the driver error behind a 503, say) is for the log only: the error filter logs it with the
 * request id, and it never reaches the response body, which carries a stable code and a safe sentence.
 */
export class ApiError extends Error {
  /** Response headers that belong to the error (Retry-After on 503). */
  headers?: Record<string, string>;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  static badRequest(message: string, details?: unknown) {
    return new ApiError(400, 'bad_request', message, details);
  }
  static notFound(what = 'resource') {
    return new ApiError(404, 'not_found', `${what} not found`);
  }
  static conflict(message: string, details?: unknown) {
    return new ApiError(409, 'conflict', message, details);
  }
  static unprocessable(message: string, details?: unknown) {
    return new ApiError(422, 'validation_failed', message, details);
  }
}

export interface ErrorBody {
  error: { status: number; code: string; message: string; details?: unknown; requestId?: string };
}
