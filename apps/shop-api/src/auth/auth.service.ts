import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { UsersRepository } from '../users/users.repository.js';
import { PasswordHasher } from './password-hasher.js';
import { RoleCache } from './role.cache.js';
import { TokenService } from './token.service.js';

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly tokens: TokenService,
    private readonly hasher: PasswordHasher,
    private readonly roles: RoleCache,
  ) {}

  async signUp(email: string, password: string): Promise<{ accessToken: string; userId: string }> {
    const passwordHash = await this.hasher.hash(password);
    const userId = await this.users.insert(email, passwordHash);
    if (!userId) throw ApiError.conflict('an account with this e-mail already exists');
    return { accessToken: await this.tokens.issueAccess(userId, 0), userId };
  }

  async signIn(email: string, password: string): Promise<{ accessToken: string }> {
    const user = await this.users.credentialsByEmail(email);
    const ok = await this.hasher.verify(user?.passwordHash, password);
    if (!user || !ok) throw new ApiError(401, 'unauthorized', 'wrong e-mail or password');
    return { accessToken: await this.tokens.issueAccess(user.id, user.tokenVersion) };
  }

  /**
   * Checks the current password, stores the new hash and raises token_version, which ends every token
   * issued before (the guard compares versions). The client signs in again with the new password.
   */
  async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<void> {
    const user = await this.users.credentials(userId);
    if (!user) throw new ApiError(401, 'unauthorized', 'the account no longer exists');
    if (!(await this.hasher.verify(user.passwordHash, currentPassword))) throw new ApiError(403, 'wrong_password', 'the current password is wrong');
    if (currentPassword === newPassword) throw ApiError.badRequest('the new password must differ from the current one', [{ field: 'newPassword', problems: ['must differ from currentPassword'] }]);
    const passwordHash = await this.hasher.hash(newPassword);
    // Compare-and-set on the version: of two concurrent changes with the same old password, one wins.
    const changed = await this.users.setPassword(userId, passwordHash, user.tokenVersion);
    this.roles.forget(userId);
    if (!changed) throw ApiError.conflict('the password was changed concurrently: sign in again');
  }
}
