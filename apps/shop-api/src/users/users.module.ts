import { Module } from '@nestjs/common';
import { UsersController } from './users.controller.js';
import { UsersRepository } from './users.repository.js';

/** Accounts as resources (GET /me, GET /users/:id); sign-up, sign-in and passwords live in AuthModule. */
@Module({ controllers: [UsersController], providers: [UsersRepository], exports: [UsersRepository] })
export class UsersModule {}
