/**
 * Authentication for the shorts routes that a browser cannot decorate with an Authorization header:
 * EventSource (no custom headers) and the tus mount (raw Fastify routes, outside Nest's guards).
 * EventSource uses a short-lived signed query token (`POST /shorts/events-token`, scope "sse", 15 min by
 * default): not a cookie, so no CSRF surface and it works across origins; the full access token never
 * appears in a URL (URLs end up in logs), and the scoped one cannot call any other route.
 */
import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { ApiError, Settings } from '#libs/core';
import { bearerToken, type AuthUser } from '../auth/auth.guard.js';

@Injectable()
export class ShortsAuth {
  constructor(
    private readonly jwt: JwtService,
    private readonly config: Settings,
  ) {}

  async issueSseToken(user: AuthUser): Promise<{ token: string; expiresIn: number }> {
    const expiresIn = this.config.shorts.sseTokenTtlSeconds;
    return { token: await this.jwt.signAsync({ sub: user.id, role: user.role, scope: 'sse' }, { expiresIn }), expiresIn };
  }

  /** Bearer access token (any route) or, when allowQuery, an sse-scoped token from ?token=. */
  async authenticate(headers: Record<string, unknown>, queryToken?: unknown, allowQuery = false): Promise<AuthUser> {
    const header = bearerToken(headers.authorization);
    const token = header ?? (allowQuery && typeof queryToken === 'string' ? queryToken : undefined);
    if (!token) throw new ApiError(401, 'unauthorized', allowQuery ? 'a bearer token or an sse token (?token=) is required' : 'a bearer token is required');
    let payload: { sub: string; role: string; scope?: string };
    try {
      payload = await this.jwt.verifyAsync(token);
    } catch {
      throw new ApiError(401, 'unauthorized', 'the token is invalid or expired');
    }
    if (!header && payload.scope !== 'sse') throw new ApiError(401, 'unauthorized', 'only an sse token may be passed in the query string');
    if (header && payload.scope === 'sse') throw new ApiError(401, 'unauthorized', 'an sse token is only valid for event streams');
    return { id: String(payload.sub), role: payload.role === 'admin' ? 'admin' : 'user' };
  }
}
