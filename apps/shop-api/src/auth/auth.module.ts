import { Global, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { Settings } from '#libs/core';
import { AuthController, PasswordController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { AuthService } from './auth.service.js';
import { PasswordHasher } from './password-hasher.js';
import { RoleCache } from './role.cache.js';
import { TokenService } from './token.service.js';
import { UsersModule } from '../users/users.module.js';

// JwtService is not exported: every token is signed and checked by TokenService (algorithm, issuer,
// audience, type, account), so no module can verify one with looser rules.
@Global()
@Module({
  imports: [
    UsersModule,
    JwtModule.registerAsync({
      inject: [Settings],
      useFactory: (config: Settings) => ({ secret: config.auth.jwtSecret }),
    }),
  ],
  controllers: [AuthController, PasswordController],
  providers: [AuthService, AuthGuard, TokenService, RoleCache, PasswordHasher],
  exports: [AuthService, AuthGuard, TokenService, RoleCache, PasswordHasher],
})
export class AuthModule {}
