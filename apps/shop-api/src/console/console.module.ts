/**
 * The trade-off console (issue 15, docs/console.md): the page, the live stream and, only with
 * CONSOLE_EXPERIMENTS=on (never in production: config refuses it), the experiment routes.
 */
import { Module, type DynamicModule } from '@nestjs/common';
import type { AppConfig } from '#libs/core';
import { AuthModule } from '../auth/auth.module.js';
import { CatalogModule } from '../catalog/catalog.module.js';
import { HealthModule } from '../health/health.module.js';
import { OrdersModule } from '../orders/orders.module.js';
import { ShortsModule } from '../shorts/shorts.module.js';
import { ConsoleController, ExperimentsController } from './console.controller.js';
import { ConsoleWebController } from './console-web.controller.js';
import { ExperimentRunner } from './experiment-runner.js';
import { ConsoleSampler } from './sampler.js';
import { TableGauges } from './table-gauges.js';

@Module({})
export class ConsoleModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConsoleModule,
      imports: [AuthModule, HealthModule, CatalogModule, OrdersModule, ShortsModule],
      controllers: [ConsoleWebController, ConsoleController, ...(config.console.experiments ? [ExperimentsController] : [])],
      providers: [ConsoleSampler, ExperimentRunner, TableGauges],
      exports: [ExperimentRunner, ConsoleSampler],
    };
  }
}
