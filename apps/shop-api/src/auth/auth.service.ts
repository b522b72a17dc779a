import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { hash, verify } from '@node-rs/argon2';
import { ApiError } from '#libs/core';
import { DbNodes } from '#libs/db';
import type { Role } from './auth.guard.js';

// A hash to verify against when the e-mail is unknown, so sign-in takes the same time either way.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0RxpM0mJwd9xPZ3YOuTeyD9eqNfMCv2zQ2Y+iF1ZjJg';

@Injectable()
export class AuthService {
  constructor(
    private readonly db: DbNodes,
    private readonly jwt: JwtService,
  ) {}

  async signUp(email: string, password: string): Promise<{ accessToken: string; userId: string }> {
    const passwordHash = await hash(password);
    try {
      const res = await this.db.primary.ds.query('INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?)', [email.toLowerCase(), passwordHash, 'user']);
      const userId = String(res.insertId);
      return { accessToken: await this.issue(userId, 'user'), userId };
    } catch (e: any) {
      if (e?.code === 'ER_DUP_ENTRY' || e?.driverError?.code === 'ER_DUP_ENTRY') throw ApiError.conflict('an account with this e-mail already exists');
      throw e;
    }
  }

  async signIn(email: string, password: string): Promise<{ accessToken: string }> {
    const [user] = await this.db.primary.ds.query('SELECT id, password_hash, role FROM users WHERE email = ?', [email.toLowerCase()]);
    const ok = await verify(user?.password_hash ?? DUMMY_HASH, password).catch(() => false);
    if (!user || !ok) throw new ApiError(401, 'unauthorized', 'wrong e-mail or password');
    return { accessToken: await this.issue(String(user.id), user.role) };
  }

  issue(userId: string, role: Role): Promise<string> {
    return this.jwt.signAsync({ sub: userId, role });
  }
}
