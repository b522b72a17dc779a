import { Global, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { Settings } from '#libs/core';
import { AuthController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { AuthService } from './auth.service.js';

@Global()
@Module({
  imports: [
    JwtModule.registerAsync({
      inject: [Settings],
      useFactory: (config: Settings) => ({ secret: config.auth.jwtSecret, signOptions: { expiresIn: config.auth.tokenTtlSeconds } }),
    }),
  ],
  controllers: [AuthController],
  providers: [AuthService, AuthGuard],
  exports: [AuthService, AuthGuard, JwtModule],
})
export class AuthModule {}
