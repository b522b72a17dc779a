/**
 * Read-your-writes over HTTP. In: the X-Consistency-Token header and, for a signed-in user, the latest
 * token this API remembered for them in redis-queue (a browser that ignores headers still reads its own
 * writes; the key lives CONSISTENCY_TOKEN_TTL_MS, long enough to outlast normal replica lag). Both are
 * merged into the request's ConsistencyScope, which ReplicaRouter reads. Out: after a write, the write's
 * token in X-Consistency-Token, remembered for the user before the response leaves.
 * Trade-off: a signed-in request pays one Redis GET; anonymous reads pay nothing. Redis down: the header
 * still works, the per-user memory is skipped (reads may then be stale for header-less clients).
 */
import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Observable, from, mergeMap } from 'rxjs';
import { LOGGER, ApiError, RedisClients, Settings, type Logger, withTimeout } from '#libs/core';
import { ConsistencyScope, ConsistencyToken, InvalidConsistencyToken, ReplicaRouter, type ConsistencyState } from '#libs/db';
import { bearerToken } from '../auth/auth.guard.js';
import { TokenService } from '../auth/token.service.js';

export const CONSISTENCY_HEADER = 'x-consistency-token';
const REDIS_TIMEOUT_MS = 200;


@Injectable()
export class ConsistencyInterceptor implements NestInterceptor {
  constructor(
    private readonly router: ReplicaRouter,
    private readonly redis: RedisClients,
    private readonly tokens: TokenService,
    private readonly config: Settings,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  static userKey(userId: string): string {
    return `consistency:user:${userId}`;
  }

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest();
    const reply = ctx.switchToHttp().getResponse();
    if (!req.headers[CONSISTENCY_HEADER] && !req.headers.authorization && !req.user) {
      // Anonymous, token-less requests (most catalog reads) skip the async lookup entirely: no promise,
      // no extra observable hop on the hot path.
      const state: ConsistencyState = { token: null, written: null };
      return new Observable<unknown>((sub) =>
        ConsistencyScope.run(state, () => next.handle().pipe(mergeMap((value) => this.leave(state, null, reply).then(() => value))).subscribe(sub)),
      );
    }
    return from(this.enter(req)).pipe(
      mergeMap(
        ({ state, userId }) =>
          new Observable<unknown>((sub) =>
            ConsistencyScope.run(state, () =>
              next
                .handle()
                .pipe(mergeMap((value) => this.leave(state, userId, reply).then(() => value)))
                .subscribe(sub),
            ),
          ),
      ),
    );
  }

  private async enter(req: any): Promise<{ state: ConsistencyState; userId: string | null }> {
    const dialect = this.router.nodes.primary.dialect;
    let token: ConsistencyToken | null = null;
    const raw = req.headers[CONSISTENCY_HEADER];
    if (raw !== undefined && raw !== '') {
      try {
        // Malformed -> 400 bad_request; ahead of the primary -> 400 invalid_consistency_token, before any read waits for it.
        token = await this.router.acceptToken(Array.isArray(raw) ? raw.join(',') : String(raw));
      } catch (e) {
        if (e instanceof InvalidConsistencyToken) throw new ApiError(400, e.code, e.message, [{ field: 'X-Consistency-Token', problems: [e.message] }]);
        throw e;
      }
    }
    const userId = req.user?.id ?? (await this.userFromBearer(req.headers.authorization));
    if (userId) {
      try {
        const remembered = await withTimeout(this.redis.queue.get(ConsistencyInterceptor.userKey(userId)), REDIS_TIMEOUT_MS, 'redis-queue');
        const mine = remembered && dialect.isGtid(remembered) ? ConsistencyToken.of(remembered) : null;
        // Only this API writes the key, but a rebuilt primary (or a tampered key) must not make every read of this user wait.
        if (mine && (await this.router.isReachable(mine))) token = ConsistencyToken.merge(dialect, token, mine);
        else if (mine) this.logger.warn({ userId }, 'consistency: ignored a remembered token ahead of the primary');
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'consistency: per-user token unavailable (redis-queue)');
      }
    }
    return { state: { token, written: null }, userId };
  }

  private async leave(state: ConsistencyState, userId: string | null, reply: any): Promise<void> {
    if (state.written && userId) {
      try {
        await withTimeout(this.redis.queue.set(ConsistencyInterceptor.userKey(userId), state.written.gtid, 'PX', this.config.replication.userTokenTtlMs), REDIS_TIMEOUT_MS, 'redis-queue');
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'consistency: could not remember the user token (redis-queue)');
      }
    }
    const out = state.written ?? state.token;
    if (out) void reply.header(CONSISTENCY_HEADER, out.gtid);
  }

  /** Unguarded routes (product reads) still know the signed-in user, if a valid bearer token came along. */
  private async userFromBearer(header: unknown): Promise<string | null> {
    const token = bearerToken(header);
    if (!token) return null;
    try {
      return (await this.tokens.authenticate(token, 'access')).id;
    } catch {
      return null; // an invalid token on a public route is the guard's business, not ours
    }
  }
}
