/**
 * Builds the shop-api Nest application on Fastify: request ids, pino logs, one JSON error shape,
 * validation, Prometheus latency histograms and OpenAPI at /docs. Used by main.ts and by the tests,
 * which start several instances in one process on port 0.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { BadRequestException, ValidationPipe } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { createLogger, Metrics, type AppConfig, type Logger } from '#libs/core';
import { AppModule } from './app.module.js';
import { clientErrorHandler, frameworkErrors } from './http/client-error.js';
import { ErrorFilter } from './http/error.filter.js';
import { depthLimitedJsonParser } from './http/json-body.js';
import { PinoNestLogger } from './http/pino-nest-logger.js';
import { registerRateLimits } from './http/rate-limit.js';
import { registerHotProductRoute } from './catalog/product-http.js';
import { ProductsService } from './catalog/products.service.js';

export interface CreateAppOptions {
  logger?: Logger;
  /** Max request body in bytes for JSON routes. */
  bodyLimit?: number;
}

export async function createApp(config: AppConfig, opts: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  const logger = opts.logger ?? createLogger(config.logLevel, 'shop-api');
  const metrics = new Metrics();
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    requestIdHeader: false,
    // Off by default: with no proxy in front, X-Forwarded-For is whatever the client wrote (rate-limit keys use req.ip).
    trustProxy: config.trustProxy,
    // Requests the HTTP parser or Fastify's router rejects answer the JSON error shape too.
    clientErrorHandler,
    frameworkErrors,
    genReqId: (req: { headers: Record<string, unknown> }) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9\-_.]{1,64}$/.test(given) ? given : randomUUID();
    },
  } as any);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, logger, metrics), adapter, {
    // Silent while wiring up: a failed start-up is reported by main.ts in one sentence, not a stack trace.
    logger: false,
    abortOnError: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  // JSON bodies nested deeper than HTTP_MAX_JSON_DEPTH answer 400 before validation recurses into them.
  app.useBodyParser('application/json', { bodyLimit: opts.bodyLimit ?? 1024 * 1024 }, depthLimitedJsonParser(fastify, config.http.maxJsonDepth));
  // Callback-style hooks: every request runs them, and an async hook costs a promise each.
  fastify.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions?.url ?? 'unmatched';
    metrics.httpDuration.labels(req.method, route, String(reply.statusCode)).observe(reply.elapsedTime / 1000);
    done();
  });
  // Errors raised by Fastify itself (bad JSON, body too large) reach ErrorFilter through Nest's error handler.
  app.useLogger(new PinoNestLogger(logger));
  app.useGlobalFilters(new ErrorFilter(logger));
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) =>
        new BadRequestException({
          message: 'request validation failed',
          details: errors.map((e) => ({ field: e.property, problems: Object.values(e.constraints ?? {}) })),
        }),
    }),
  );
  app.enableShutdownHooks();

  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('mallscale shop-api')
      .setDescription('System-design reference shopping-mall backend: see docs/ in the repository')
      .addBearerAuth()
      .build(),
  );
  // Swagger UI's static assets need @fastify/static, which jest's ESM loader cannot load; tests use /docs-json.
  SwaggerModule.setup('docs', app, doc, { ui: config.env !== 'test' });
  await registerRateLimits(app, config, logger);
  // Anonymous GET /products/:id answered at the Fastify level, before Nest's pipeline (ADR 0004). Not with the
  // benchmark's peer baseline: its CacheInterceptor sits in that pipeline, so the hook would hide it.
  if (config.benchPeerCache === 'none') {
    const products = app.get(ProductsService);
    registerHotProductRoute(fastify, () => products, config.cache);
  }
  await app.init();
  return app;
}
