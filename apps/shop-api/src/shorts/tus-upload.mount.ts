/**
 * TusUploadMount: the tus resumable-upload protocol (@tus/server) mounted in shop-api at
 * /shorts/uploads. The browser sends the video to object storage through the API, never to a model
 * server (seed Q2). Every request is authenticated (bearer token) and an upload belongs to the user who
 * created it: another user's upload answers 404. Upload-Length over SHORTS_MAX_UPLOAD_BYTES -> 413.
 * A RedisLocker serialises requests on one upload across API instances; the store is the storage port.
 * Which upload a request acts on: @tus/server takes the last segment of the whole URL, query included
 * (`/shorts/uploads?/<id>` would name <id>), so only two URL forms are accepted at all — exactly
 * `/shorts/uploads` (POST, OPTIONS) and `/shorts/uploads/<32 hex>` (HEAD, PATCH, DELETE, OPTIONS), no
 * query, no encoding, no extra slashes — and tus is told the id through getFileIdFromRequest: the very
 * id whose owner was checked here, never one it parses itself.
 * Abuse limits (ShortsQuotas): unfinished jobs + uploads per user, upload bytes per user per UTC day (both
 * 429 on creation, checked before tus creates anything), a deferred Upload-Length is refused (the daily
 * quota needs the size up front), unfinished uploads expire (410, then the retention sweeper deletes
 * them), and a PATCH whose body is silent for SHORTS_UPLOAD_IDLE_TIMEOUT_MS is cut: what arrived is
 * kept and the lock is freed, while a slow body that keeps moving is never cut (the timer is the
 * socket's idle timer, reset by every byte).
 * Every tus error (413, 409 offset mismatch, 412/400 protocol errors, 404) answers the project's JSON error
 * shape; tus clients only read the status, so nothing is lost for them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Server as TusServer } from '@tus/server';
import type { Upload } from '@tus/utils';
import type { Redis } from 'ioredis';
import { LOGGER, ApiError, createRedis, RedisClients, Settings, type Logger } from '#libs/core';
import { ObjectStorage } from '#libs/storage';
import { bearerToken, type AuthUser } from '../auth/auth.guard.js';
import { TokenService } from '../auth/token.service.js';
import { toErrorBody } from '../http/error.filter.js';

import { RedisLocker } from './redis-locker.js';
import { ShortsQuotas } from './quotas.js';
import { ShortsRepository } from './shorts.repository.js';
import { ShortsService } from './shorts.service.js';
import { shortsKeys } from '#libs/shorts-jobs';
import { StorageTusStore } from './storage-tus.store.js';

export const UPLOAD_PATH = '/shorts/uploads';
const UPLOAD_URL = /^\/shorts\/uploads(?:\/([0-9a-f]{32}))?$/;

/** The upload a raw request URL names: {} for the collection, undefined for any other form. */
export function parseUploadUrl(url: string | undefined): { id?: string } | undefined {
  const m = UPLOAD_URL.exec(url ?? '');
  return m ? { id: m[1] } : undefined;
}

const nodeReqOf = (req: any): IncomingMessage | undefined => req.runtime?.node?.req ?? req.node?.req;

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
  /** The upload id each request was authorised for: the only id tus may act on. */
  private readonly ids = new WeakMap<IncomingMessage, string>();
  /** POST: the id reserved for the upload this request creates, and the bytes it was charged. */
  private readonly newIds = new WeakMap<IncomingMessage, string>();
  private readonly charged = new WeakMap<IncomingMessage, { key: string; bytes: number }>();
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
    private readonly repo: ShortsRepository,
    private readonly quotas: ShortsQuotas,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.storage.ensureReady();
    this.subscriber = createRedis(this.config.redis.queue, { connectionName: 'shop-api-tus-locks' });
    this.subscriber.on('error', () => undefined);
    this.store = new StorageTusStore(this.storage, this.config.shorts.uploadExpiryS * 1000);
    this.tus = new JsonErrorTusServer({
      path: UPLOAD_PATH,
      datastore: this.store,
      locker: new RedisLocker(this.redis.queue, this.subscriber, this.config.shorts.queue),
      maxSize: this.config.shorts.maxUploadBytes,
      relativeLocation: true,
      respectForwardedHeaders: true,
      // A finished upload is a job's source: deleting it would pull the file from under the worker.
      disableTerminationForFinishedUploads: true,
      namingFunction: (req) => {
        const raw = nodeReqOf(req);
        return (raw && this.newIds.get(raw)) || randomBytes(16).toString('hex');
      },
      getFileIdFromRequest: (req) => {
        const raw = nodeReqOf(req);
        return raw ? this.ids.get(raw) : undefined;
      },
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
    let owner: AuthUser | undefined;
    let id: string | undefined;
    try {
      const form = parseUploadUrl(req.raw.url);
      const allowed = form?.id ? ['HEAD', 'PATCH', 'DELETE', 'OPTIONS'] : ['POST', 'OPTIONS'];
      if (!form || !allowed.includes(req.method)) throw ApiError.notFound('upload');
      id = form.id;
      if (req.method !== 'OPTIONS') {
        const user = await this.tokens.authenticate(bearerToken(req.headers.authorization), 'access');
        owner = user;
        if (id) {
          const upload = await this.store.getUpload(id).catch(() => undefined);
          if (!upload || upload.metadata?.userId !== user.id) throw ApiError.notFound('upload');
          this.ids.set(req.raw, id);
        }
        if (req.method === 'POST') await this.checkQuotas(req, reply, user);
        this.users.set(req.raw, user);
      }
    } catch (e) {
      const { status, body } = toErrorBody(e, req.id);
      await reply.status(status).header('tus-resumable', '1.0.0').send(body);
      return;
    }
    if (req.method === 'PATCH' || req.method === 'POST') {
      // (POST too: creation-with-upload carries a body.) The socket's idle timer is reset by every byte,
      // so only a silent body is cut. Destroying the request with an error makes tus abort the write (the
      // bytes that arrived are stored) and release its lock.
      req.raw.setTimeout(this.config.shorts.uploadIdleTimeoutMs, () => {
        this.logger.warn({ uploadId: id, reqId: req.id }, 'upload body idle: connection cut');
        req.raw.destroy(new Error('upload body idle'));
      });
      // Once the whole body is in, the request may legitimately be silent (the last PATCH assembles the file).
      req.raw.once('end', () => req.raw.setTimeout(0));
    }
    reply.hijack();
    await requestIds.run(req.id, () => this.tus.handle(req.raw, reply.raw));
    if (req.method === 'DELETE' && id && owner && reply.raw.statusCode === 204) await this.quotas.closeUpload(owner.id, id);
    // A creation tus refused after the reservation (storage error, a bad header) gives its slot back.
    const reserved = this.newIds.get(req.raw);
    if (req.method === 'POST' && reserved && owner && reply.raw.statusCode !== 201) {
      await this.quotas.closeUpload(owner.id, reserved);
      const charge = this.charged.get(req.raw);
      if (charge) await this.quotas.refundUploadBytes(charge.key, charge.bytes);
    }
  }

  /**
   * Upload creation: the size must be known (the daily byte quota counts it), the user's unfinished jobs
   * and uploads are capped, and the bytes are added to today's total. Requests tus would refuse anyway
   * (no Tus-Resumable, a bad or too large Upload-Length) are left to tus, so they cost no quota; a
   * creation tus refuses after this point gives its slot and its bytes back (handle()).
   */
  private async checkQuotas(req: FastifyRequest, reply: FastifyReply, user: AuthUser): Promise<void> {
    const s = this.config.shorts;
    // @tus/server answers a concatenation request with 501 (its store has no concatenation): a client's
    // choice, so a 400 that says what to do, before any slot is reserved.
    if (req.headers['upload-concat'] !== undefined) throw ApiError.badRequest('Upload-Concat is not supported: send the file as one upload (turn off parallel uploads in the tus client)');
    if (req.headers['upload-defer-length'] !== undefined) throw ApiError.badRequest('Upload-Length is required: uploads of unknown length are not accepted');
    const raw = req.headers['upload-length'];
    const length = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
    if (!req.headers['tus-resumable'] || !Number.isSafeInteger(length) || length > s.maxUploadBytes) return;
    // The id is chosen here (tus takes it through namingFunction), so the slot can be reserved atomically.
    const id = randomBytes(16).toString('hex');
    if (!(await this.quotas.reserveUpload(user.id, id, await this.repo.countActiveForUser(user.id), s.maxActiveJobsPerUser))) {
      throw new ApiError(429, 'too_many_active_jobs', `at most ${s.maxActiveJobsPerUser} uploads and unfinished jobs at once: wait until one is done`);
    }
    this.newIds.set(req.raw, id);
    const bytes = await this.quotas.addUploadBytes(user.id, length);
    if (bytes.ok) this.charged.set(req.raw, { key: bytes.key, bytes: length });
    else {
      await this.quotas.closeUpload(user.id, id);
      reply.header('retry-after', String(bytes.retryAfterS));
      throw new ApiError(429, 'upload_quota_exceeded', `this upload would pass the daily upload limit of ${s.maxUploadBytesPerDay} bytes: try again tomorrow (UTC)`);
    }
  }

  private async onCreate(req: any, upload: Upload): Promise<{ metadata: Record<string, string | null> }> {
    const raw = nodeReqOf(req);
    const user = raw ? this.users.get(raw) : undefined;
    if (!user) throw { status_code: 401, body: 'unauthorized\n' };
    // Every upload is created under a quota reservation (checkQuotas); anything else is refused.
    if (!raw || this.newIds.get(raw) !== upload.id) throw { status_code: 400, body: 'a valid Upload-Length is required\n' };
    const fileName = String(upload.metadata?.filename ?? upload.metadata?.name ?? 'video').slice(0, 255);
    // Ownership is the server's word, never the client's metadata.
    return { metadata: { ...upload.metadata, filename: fileName, userId: user.id } };
  }

  private async onFinish(upload: Upload): Promise<void> {
    const userId = upload.metadata?.userId;
    if (!userId) throw { status_code: 500, body: 'upload without owner\n' };
    await this.shorts.createJob({ id: upload.id, userId, fileName: String(upload.metadata?.filename ?? 'video'), sizeBytes: upload.size ?? upload.offset, sourceKey: shortsKeys.source(upload.id) });
    await this.quotas.closeUpload(userId, upload.id);
    this.logger.info({ jobId: upload.id, userId }, 'upload complete, shorts job queued');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}
