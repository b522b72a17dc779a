/**
 * Accounts as resources: a user reads their own profile; anyone else's id answers 404 (not 403, which
 * would confirm the account exists). Admins read any.
 */
import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ApiError } from '#libs/core';
import { UsersRepository } from './users.repository.js';
import { AuthGuard, CurrentUser, type AuthUser } from '../auth/auth.guard.js';

@ApiTags('accounts')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller()
export class UsersController {
  constructor(private readonly users: UsersRepository) {}

  @Get('me')
  me(@CurrentUser() user: AuthUser) {
    return this.find(user.id);
  }

  @Get('users/:id')
  byId(@Param('id') id: string, @CurrentUser() user: AuthUser) {
    if (!/^[1-9][0-9]{0,18}$/.test(id)) throw ApiError.badRequest('id must be a positive integer');
    if (user.role !== 'admin' && user.id !== id) throw ApiError.notFound('user');
    return this.find(id);
  }

  private async find(id: string) {
    const profile = await this.users.profile(id);
    if (!profile) throw ApiError.notFound('user');
    return profile;
  }
}
