/**
 * RoleCache: a user's current role and token version, read from the primary (a replica could lag behind
 * a demotion) and kept in process for AUTH_ROLE_CACHE_MS (0 = read every time). Missing users are not
 * cached: their tokens are refused on every request, and a forged id cannot fill the cache.
 * The instance that changes a password forgets the entry at once; other instances within the TTL.
 */
import { Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ApiError, Settings } from '#libs/core';
import { UsersRepository } from '../users/users.repository.js';
import type { Role } from './auth.guard.js';

export interface AccountState {
  role: Role;
  tokenVersion: number;
}

@Injectable()
export class RoleCache {
  private readonly cache?: LRUCache<string, AccountState>;

  constructor(
    private readonly users: UsersRepository,
    config: Settings,
  ) {
    const ttl = config.auth.roleCacheMs;
    if (ttl > 0) this.cache = new LRUCache({ max: 100_000, ttl });
  }

  async get(userId: string): Promise<AccountState | undefined> {
    const hit = this.cache?.get(userId);
    if (hit) return hit;
    let row: { role: string; tokenVersion: number } | undefined;
    try {
      row = await this.users.accountState(userId);
    } catch {
      // Without the primary nobody can be authenticated safely: a clear 503, not a 500 (details stay in the driver).
      throw new ApiError(503, 'unavailable', 'accounts cannot be checked right now: retry shortly');
    }
    if (!row) return undefined;
    const state: AccountState = { role: row.role === 'admin' ? 'admin' : 'user', tokenVersion: Number(row.tokenVersion) };
    this.cache?.set(userId, state);
    return state;
  }

  forget(userId: string): void {
    this.cache?.delete(userId);
  }
}
