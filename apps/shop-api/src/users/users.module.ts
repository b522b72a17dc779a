import { Module } from '@nestjs/common';
import { UsersController } from './users.controller.js';

/** Accounts as resources (GET /me, GET /users/:id); sign-up, sign-in and passwords live in AuthModule. */
@Module({ controllers: [UsersController] })
export class UsersModule {}
