/**
 * shorts-worker: a Nest application context (no HTTP) that runs the BullMQ processor for the `shorts`
 * queue. Stateless: every input comes from the queue and object storage, so it scales by count
 * (`docker compose up --scale shorts-worker=3`).
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { createLogger, loadConfigOrExit } from '#libs/core';
import { WorkerModule } from './worker.module.js';

async function main() {
  const config = loadConfigOrExit('shorts-worker');
  const logger = createLogger(config.logLevel, 'shorts-worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, logger), { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  logger.info('shorts-worker running');
}

void main();
