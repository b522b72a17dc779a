/**
 * TokenService: the one place that signs and verifies tokens (AuthGuard, the tus mount, the SSE route and
 * the consistency interceptor all come here), so every door checks the same things:
 *  - HS256 only, with our issuer and audience (no `alg: none`, no algorithm confusion, no token minted
 *    for another service with the same key);
 *  - a type: `access` opens the API, `sse` opens one job's event stream and nothing else (it travels in a
 *    URL, so it must be worth little);
 *  - the account: the user must still exist, and the token's version must match the row's (a password
 *    change raises it). The role comes from the row, never from the token.
 * The account lookup goes through RoleCache (AUTH_ROLE_CACHE_MS, at most a minute): one primary read per
 * user and interval instead of one per request, at the price of that much delay for demotions elsewhere.
 */
import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { ApiError, Settings } from '#libs/core';
import type { AuthUser } from './auth.guard.js';
import { RoleCache } from './role.cache.js';

export type TokenType = 'access' | 'sse';
const ALGORITHM = 'HS256' as const;

interface Claims {
  sub: string;
  typ: TokenType;
  /** users.token_version when the token was issued. */
  ver: number;
  /** sse tokens: the one job whose stream they open. */
  job?: string;
}

const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message);

@Injectable()
export class TokenService {
  constructor(
    private readonly jwt: JwtService,
    private readonly roles: RoleCache,
    private readonly config: Settings,
  ) {}

  private sign(claims: Claims, expiresIn: number): Promise<string> {
    const { issuer, audience } = this.config.auth;
    return this.jwt.signAsync({ ...claims }, { algorithm: ALGORITHM, issuer, audience, expiresIn });
  }

  issueAccess(userId: string, tokenVersion: number): Promise<string> {
    return this.sign({ sub: userId, typ: 'access', ver: tokenVersion }, this.config.auth.tokenTtlSeconds);
  }

  /** A token that opens the event stream of one job (the caller has checked the job is the user's). */
  async issueSse(user: AuthUser, jobId: string): Promise<{ token: string; expiresIn: number }> {
    const expiresIn = this.config.shorts.sseTokenTtlSeconds;
    const account = await this.roles.get(user.id);
    if (!account) throw unauthorized('the account no longer exists');
    return { token: await this.sign({ sub: user.id, typ: 'sse', ver: account.tokenVersion, job: jobId }, expiresIn), expiresIn };
  }

  /**
   * Verifies a token of the given type and returns its user with the role from the database. `jobId`
   * is required for sse tokens and must be the job they were issued for. Any failure is a 401.
   */
  async authenticate(token: string | undefined, type: TokenType, jobId?: string): Promise<AuthUser> {
    if (!token) throw unauthorized(type === 'sse' ? 'an event-stream token (?token=) is required' : 'a bearer token is required');
    let claims: Partial<Claims>;
    try {
      const { issuer, audience } = this.config.auth;
      claims = await this.jwt.verifyAsync(token, { algorithms: [ALGORITHM], issuer, audience });
    } catch {
      throw unauthorized('the token is invalid or expired');
    }
    if (claims.typ !== type) {
      throw unauthorized(type === 'access' ? 'only an access token opens this route' : 'only an event-stream token may be passed in the query string');
    }
    if (type === 'sse' && (!jobId || claims.job !== jobId)) throw unauthorized('this event-stream token is for another job');
    const id = typeof claims.sub === 'string' && /^[1-9][0-9]{0,19}$/.test(claims.sub) ? claims.sub : undefined;
    const account = id ? await this.roles.get(id) : undefined;
    if (!id || !account || account.tokenVersion !== claims.ver) throw unauthorized('the token is no longer valid: sign in again');
    return { id, role: account.role };
  }
}
