/**
 * A public route that shows more to admins: it asks AuthGuard (the one place that verifies tokens) who
 * is calling, but never refuses the call. A missing, forged or expired token just means "anonymous".
 */
import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { AuthGuard, type AuthUser } from '../auth/auth.guard.js';

@Injectable()
export class OptionalAuthGuard implements CanActivate {
  constructor(private readonly guard: AuthGuard) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, unknown>; user?: AuthUser }>();
    if (req.headers.authorization === undefined) return true;
    try {
      if (!(await this.guard.canActivate(ctx))) req.user = undefined;
    } catch {
      req.user = undefined;
    }
    return true;
  }
}

export function isAdmin(req: { user?: AuthUser }): boolean {
  return req.user?.role === 'admin';
}
