import { Module } from '@nestjs/common';
import { AdminController } from './admin.controller.js';

/** Operator views that span capabilities (the database nodes this instance talks to). */
@Module({ controllers: [AdminController] })
export class AdminModule {}
