/**
 * Bearer JWT guard with roles. Missing or invalid token -> 401; a valid token without the role -> 403.
 * Only access tokens open routes (TokenService); the role is the database's, not the token's.
 * Resources owned by another user answer 404 in the services (never 403: that would confirm they exist).
 */
import { createParamDecorator, Injectable, SetMetadata, ForbiddenException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { TokenService } from './token.service.js';

export type Role = 'user' | 'admin';
export interface AuthUser {
  id: string;
  role: Role;
}

export const ROLES_KEY = 'mallscale:roles';
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

export const CurrentUser = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthUser => ctx.switchToHttp().getRequest().user);

export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer\s+([A-Za-z0-9\-_.]+)$/.exec(header.trim());
  return m?.[1];
}

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly tokens: TokenService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest();
    req.user = await this.tokens.authenticate(bearerToken(req.headers.authorization), 'access');
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [ctx.getHandler(), ctx.getClass()]);
    if (roles?.length && !roles.includes(req.user.role)) throw new ForbiddenException(`this action needs the role ${roles.join(' or ')}`);
    return true;
  }
}
