import { Module } from '@nestjs/common';
import { HealthController } from './health.controller.js';
import { HealthService } from './health.service.js';
import { OptionalAuthGuard } from './optional-auth.guard.js';

@Module({ controllers: [HealthController], providers: [HealthService, OptionalAuthGuard], exports: [HealthService] })
export class HealthModule {}
