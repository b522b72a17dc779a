/**
 * TusUploadMount: the tus resumable-upload protocol (@tus/server) mounted in shop-api at
 * /shorts/uploads. The browser sends the video to object storage through the API, never to a model
 * server (seed Q2). Every request is authenticated (bearer token) and an upload belongs to the user who
 * created it: another user's upload answers 404. Upload-Length over SHORTS_MAX_UPLOAD_BYTES -> 413.
 * A RedisLocker serialises requests on one upload across API instances; the store is the storage port.
 * Every tus error (413, 409 offset mismatch, 412/400 protocol errors, 404) answers the project's JSON error
 * shape; tus clients only read the status, so nothing is lost for them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Server as TusServer } from '@tus/server';
import type { Upload } from '@tus/utils';
import type { Redis } from 'ioredis';
import { ApiError, createRedis, RedisClients, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';
import { bearerToken, type AuthUser } from '../auth/auth.guard.js';
import { TokenService } from '../auth/token.service.js';
import { toErrorBody } from '../http/error.filter.js';
import { LOGGER } from '../infra.module.js';
import { RedisLocker } from './redis-locker.js';
import { ShortsService } from './shorts.service.js';
import { sourceKeyOf, StorageTusStore } from './storage-tus.store.js';

export const UPLOAD_PATH = '/shorts/uploads';

/** The Fastify request id of the tus request being handled (tus's write() does not get the request). */
const requestIds = new AsyncLocalStorage<string>();

/**
 * @tus/server writes every error (handler errors after onResponseError, and its own 412/400/404 protocol
 * answers) through Server.write(); rewriting the body there is the one place that covers all of them.
 * 5xx bodies are replaced: tus appends internal error messages to them.
 */
export class JsonErrorTusServer extends TusServer {
  override async write(...args: Parameters<TusServer['write']>): ReturnType<TusServer['write']> {
    const [context, headers, status, body = ''] = args;
    if (status < 400) return super.write(context, headers, status, body);
    const requestId = requestIds.getStore();
    const error =
      status < 500
        ? toErrorBody({ statusCode: status, message: body.trim() || `HTTP ${status}` }, requestId).body.error
        : { status, code: 'internal_error', message: 'internal error', requestId };
    headers.set('Content-Type', 'application/json; charset=utf-8');
    return super.write(context, headers, status, JSON.stringify({ error }));
  }
}

@Injectable()
export class TusUploadMount implements OnModuleInit, OnApplicationShutdown {
  private readonly users = new WeakMap<IncomingMessage, AuthUser>();
  private subscriber?: Redis;
  store!: StorageTusStore;
  tus!: TusServer;

  constructor(
    private readonly host: HttpAdapterHost,
    private readonly config: Settings,
    private readonly redis: RedisClients,
    private readonly storage: ObjectStorage,
    private readonly tokens: TokenService,
    private readonly shorts: ShortsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.storage.ensureReady();
    this.subscriber = createRedis(this.config.redis.queueUrl, { connectionName: 'shop-api-tus-locks' });
    this.subscriber.on('error', () => undefined);
    this.store = new StorageTusStore(this.storage);
    this.tus = new JsonErrorTusServer({
      path: UPLOAD_PATH,
      datastore: this.store,
      locker: new RedisLocker(this.redis.queue, this.subscriber, this.config.shorts.queue),
      maxSize: this.config.shorts.maxUploadBytes,
      relativeLocation: true,
      respectForwardedHeaders: true,
      onResponseError: (_req, err) => {
        const status = (err as { status_code?: number }).status_code ?? 500;
        if (status >= 500) this.logger.error({ err }, 'tus upload error');
        return undefined;
      },
      onUploadCreate: async (req, upload) => this.onCreate(req, upload),
      onUploadFinish: async (_req, upload) => {
        await this.onFinish(upload);
        return {};
      },
    });
    const fastify = this.host.httpAdapter.getInstance<FastifyInstance>();
    // Leave PATCH bodies unread: tus streams them straight into storage.
    fastify.addContentTypeParser('application/offset+octet-stream', (_req, _payload, done) => done(null));
    const handler = (req: FastifyRequest, reply: FastifyReply) => this.handle(req, reply);
    const methods = ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'] as const;
    fastify.route({ method: [...methods], url: UPLOAD_PATH, handler });
    fastify.route({ method: [...methods], url: `${UPLOAD_PATH}/:id`, handler });
  }

  private async handle(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      if (req.method !== 'OPTIONS') {
        const user = await this.tokens.authenticate(bearerToken(req.headers.authorization), 'access');
        const id = (req.params as { id?: string }).id;
        if (id) {
          const upload = await this.store.getUpload(id).catch(() => undefined);
          if (!upload || upload.metadata?.userId !== user.id) throw ApiError.notFound('upload');
        }
        this.users.set(req.raw, user);
      }
    } catch (e) {
      const { status, body } = toErrorBody(e, req.id);
      await reply.status(status).header('tus-resumable', '1.0.0').send(body);
      return;
    }
    reply.hijack();
    await requestIds.run(req.id, () => this.tus.handle(req.raw, reply.raw));
  }

  private async onCreate(req: any, upload: Upload): Promise<{ metadata: Record<string, string | null> }> {
    const raw: IncomingMessage | undefined = req.runtime?.node?.req ?? req.node?.req;
    const user = raw ? this.users.get(raw) : undefined;
    if (!user) throw { status_code: 401, body: 'unauthorized\n' };
    const fileName = String(upload.metadata?.filename ?? upload.metadata?.name ?? 'video').slice(0, 255);
    // Ownership is the server's word, never the client's metadata.
    return { metadata: { ...upload.metadata, filename: fileName, userId: user.id } };
  }

  private async onFinish(upload: Upload): Promise<void> {
    const userId = upload.metadata?.userId;
    if (!userId) throw { status_code: 500, body: 'upload without owner\n' };
    await this.shorts.createJob({ id: upload.id, userId, fileName: String(upload.metadata?.filename ?? 'video'), sizeBytes: upload.size ?? upload.offset, sourceKey: sourceKeyOf(upload.id) });
    this.logger.info({ jobId: upload.id, userId }, 'upload complete, shorts job queued');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}
