import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { affectedRows, DbNodes } from '#libs/db';
import { PasswordHasher } from './password-hasher.js';
import { RoleCache } from './role.cache.js';
import { TokenService } from './token.service.js';

@Injectable()
export class AuthService {
  constructor(
    private readonly db: DbNodes,
    private readonly tokens: TokenService,
    private readonly hasher: PasswordHasher,
    private readonly roles: RoleCache,
  ) {}

  async signUp(email: string, password: string): Promise<{ accessToken: string; userId: string }> {
    const passwordHash = await this.hasher.hash(password);
    try {
      const res = await this.db.primary.ds.query('INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?)', [email.toLowerCase(), passwordHash, 'user']);
      const userId = String(res.insertId);
      return { accessToken: await this.tokens.issueAccess(userId, 0), userId };
    } catch (e: any) {
      if (e?.code === 'ER_DUP_ENTRY' || e?.driverError?.code === 'ER_DUP_ENTRY') throw ApiError.conflict('an account with this e-mail already exists');
      throw e;
    }
  }

  async signIn(email: string, password: string): Promise<{ accessToken: string }> {
    const [user] = await this.db.primary.ds.query('SELECT id, password_hash, token_version FROM users WHERE email = ?', [email.toLowerCase()]);
    const ok = await this.hasher.verify(user?.password_hash, password);
    if (!user || !ok) throw new ApiError(401, 'unauthorized', 'wrong e-mail or password');
    return { accessToken: await this.tokens.issueAccess(String(user.id), Number(user.token_version)) };
  }

  /**
   * Checks the current password, stores the new hash and raises token_version, which ends every token
   * issued before (the guard compares versions). The client signs in again with the new password.
   */
  async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<void> {
    const [user] = await this.db.primary.ds.query('SELECT password_hash, token_version FROM users WHERE id = ?', [userId]);
    if (!user) throw new ApiError(401, 'unauthorized', 'the account no longer exists');
    if (!(await this.hasher.verify(user.password_hash, currentPassword))) throw new ApiError(403, 'wrong_password', 'the current password is wrong');
    if (currentPassword === newPassword) throw ApiError.badRequest('the new password must differ from the current one', [{ field: 'newPassword', problems: ['must differ from currentPassword'] }]);
    const passwordHash = await this.hasher.hash(newPassword);
    // Compare-and-set on the version: of two concurrent changes with the same old password, one wins.
    const res = await this.db.primary.ds.query('UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ? AND token_version = ?', [passwordHash, userId, user.token_version]);
    this.roles.forget(userId);
    if (affectedRows(res) !== 1) throw ApiError.conflict('the password was changed concurrently: sign in again');
  }
}
