import { Module, type DynamicModule } from '@nestjs/common';
import { Settings, type AppConfig, type Logger } from '#libs/core';
import { ShortsProcessor, LOGGER } from './shorts.processor.js';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig, logger: Logger): DynamicModule {
    return {
      module: WorkerModule,
      providers: [{ provide: Settings, useValue: config }, { provide: LOGGER, useValue: logger }, ShortsProcessor],
    };
  }
}
