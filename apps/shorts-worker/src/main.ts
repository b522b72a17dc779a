/**
 * shorts-worker: a Nest application context (no HTTP) that runs the BullMQ processor for the `shorts`
 * queue. Stateless: every input comes from the queue and object storage, so it scales by count
 * (`docker compose up --scale shorts-worker=3`).
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigError, createLogger, loadConfig } from '#libs/core';
import { WorkerModule } from './worker.module.js';

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`shorts-worker cannot start: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  const logger = createLogger(config.logLevel, 'shorts-worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, logger), { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  logger.info('shorts-worker running');
}

void main();
