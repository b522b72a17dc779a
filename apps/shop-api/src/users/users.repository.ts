/**
 * UsersRepository: every statement on the users table (catalog primary). Reads go to the primary, never a
 * replica: sign-in, a demotion or a password change must be seen at once.
 */
import { Injectable } from '@nestjs/common';
import { affectedRows, DbNodes } from '#libs/db';

export interface UserProfile {
  id: string;
  email: string;
  role: string;
  createdAt: Date;
}

export interface Credentials {
  id: string;
  passwordHash: string;
  tokenVersion: number;
}

@Injectable()
export class UsersRepository {
  constructor(private readonly db: DbNodes) {}

  private query(sql: string, params: unknown[]) {
    return this.db.primary.ds.query(sql, params);
  }

  /** A new user account; undefined when the e-mail is taken (e-mails are stored lower-case). */
  async insert(email: string, passwordHash: string): Promise<string | undefined> {
    try {
      const res = await this.query('INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?)', [email.toLowerCase(), passwordHash, 'user']);
      return String(res.insertId);
    } catch (e: any) {
      if (e?.code === 'ER_DUP_ENTRY' || e?.driverError?.code === 'ER_DUP_ENTRY') return undefined;
      throw e;
    }
  }

  async credentialsByEmail(email: string): Promise<Credentials | undefined> {
    const [row] = await this.query('SELECT id, password_hash, token_version FROM users WHERE email = ?', [email.toLowerCase()]);
    return row && { id: String(row.id), passwordHash: row.password_hash, tokenVersion: Number(row.token_version) };
  }

  async credentials(id: string): Promise<Credentials | undefined> {
    const [row] = await this.query('SELECT id, password_hash, token_version FROM users WHERE id = ?', [id]);
    return row && { id: String(row.id), passwordHash: row.password_hash, tokenVersion: Number(row.token_version) };
  }

  /** Compare-and-set on the token version: stores the hash and ends older tokens; false if it moved. */
  async setPassword(id: string, passwordHash: string, expectedTokenVersion: number): Promise<boolean> {
    const res = await this.query('UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ? AND token_version = ?', [passwordHash, id, expectedTokenVersion]);
    return affectedRows(res) === 1;
  }

  /** What the auth guard needs on every request: the current role and token version. */
  async accountState(id: string): Promise<{ role: string; tokenVersion: number } | undefined> {
    const [row] = await this.query('SELECT role, token_version AS tokenVersion FROM users WHERE id = ?', [id]);
    return row && { role: row.role, tokenVersion: Number(row.tokenVersion) };
  }

  async profile(id: string): Promise<UserProfile | undefined> {
    const [row] = await this.query('SELECT id, email, role, created_at AS createdAt FROM users WHERE id = ?', [id]);
    return row && { id: String(row.id), email: row.email, role: row.role, createdAt: row.createdAt };
  }
}
