/**
 * Shorts jobs as resources: My page (the user's jobs from the catalog DB), one job, its result archive,
 * and its live progress over SSE. Another user's job answers 404.
 * SSE: each event's id is its Redis stream id, so a reconnecting EventSource (Last-Event-ID header, or
 * ?lastEventId= when the page reopens and builds a new EventSource) gets exactly the events after the
 * last one it saw — replay, then tail — on whichever API instance it lands on. Heartbeat comments keep
 * proxies from closing idle streams. The stream ends after DONE or FAILED.
 * A user holds at most SHORTS_MAX_SSE_STREAMS_PER_USER open streams across instances (ShortsQuotas): one
 * more answers 429. A finished job's result is deleted after SHORTS_RESULT_RETENTION_DAYS: then 410.
 */
import { randomUUID } from 'node:crypto';
import { Controller, Get, Headers, Inject, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LOGGER, ApiError, Settings, type Logger } from '#libs/core';
import { isStreamId, TERMINAL_STEPS, type JobStep } from '#libs/shorts-jobs';
import { ObjectStorage } from '#libs/storage';
import { AuthGuard, bearerToken, CurrentUser, type AuthUser } from '../auth/auth.guard.js';
import { TokenService } from '../auth/token.service.js';
import { toErrorBody } from '../http/error.filter.js';
import { openEventStream, SSE_HEARTBEAT, sseEvent } from '../http/event-stream.js';
import { ProgressHub } from './progress.hub.js';
import { ShortsQuotas } from './quotas.js';
import { ShortsRepository, toJobDto } from './shorts.repository.js';

const JOB_ID = /^[0-9a-f]{32}$/;

@ApiTags('shorts')
@Controller()
export class ShortsController {
  constructor(
    private readonly repo: ShortsRepository,
    private readonly storage: ObjectStorage,
    private readonly hub: ProgressHub,
    private readonly tokens: TokenService,
    private readonly config: Settings,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly quotas: ShortsQuotas,
  ) {}

  private async ownJob(id: string, user: AuthUser) {
    const job = JOB_ID.test(id) ? await this.repo.findForUser(id, user.id) : undefined;
    if (!job) throw ApiError.notFound('job');
    return job;
  }

  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Get(['me/shorts/jobs', 'shorts/jobs'])
  async list(@CurrentUser() user: AuthUser) {
    return { jobs: (await this.repo.listForUser(user.id)).map(toJobDto) };
  }

  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Get('shorts/jobs/:id')
  async one(@Param('id') id: string, @CurrentUser() user: AuthUser) {
    return toJobDto(await this.ownJob(id, user));
  }

  /**
   * EventSource cannot send an Authorization header, so its token travels in the URL (and may reach a
   * proxy's log): it opens this one job's stream, for SHORTS_SSE_TOKEN_TTL_S, and nothing else.
   */
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Post('shorts/jobs/:id/events-token')
  async eventsToken(@Param('id') id: string, @CurrentUser() user: AuthUser) {
    await this.ownJob(id, user);
    return this.tokens.issueSse(user, id);
  }

  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Get('shorts/jobs/:id/result')
  async result(@Param('id') id: string, @CurrentUser() user: AuthUser, @Res() reply: FastifyReply) {
    const job = await this.ownJob(id, user);
    if (job.status !== 'DONE' || !job.result_key) throw ApiError.conflict(`the job is ${job.status}: its result is not ready`);
    if (job.result_expired_at) throw new ApiError(410, 'gone', 'the result was deleted after the retention period');
    const head = await this.storage.head(job.result_key);
    if (!head) throw ApiError.notFound('result');
    const name = job.file_name.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '_') || 'video';
    await reply
      .header('content-type', 'application/zip')
      .header('content-length', String(head.size))
      .header('content-disposition', `attachment; filename="${name}-shorts.zip"`)
      .send(await this.storage.get(job.result_key));
  }

  @Get('shorts/jobs/:id/events')
  async events(
    @Param('id') id: string,
    @Query('token') token: string | undefined,
    @Query('lastEventId') lastEventIdQuery: string | undefined,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    let job;
    try {
      // An access token in the Authorization header (tools), or this job's event-stream token in ?token=.
      const header = bearerToken(req.headers.authorization);
      const user = header ? await this.tokens.authenticate(header, 'access') : await this.tokens.authenticate(typeof token === 'string' ? token : undefined, 'sse', id);
      job = await this.ownJob(id, user);
    } catch (e) {
      const { status, body } = toErrorBody(e, req.id);
      return reply.status(status).send(body);
    }
    const userId = String(job.user_id);
    const connId = randomUUID();
    try {
      if (!(await this.quotas.takeSseSlot(userId, connId))) {
        throw new ApiError(429, 'too_many_streams', `at most ${this.config.shorts.maxSseStreamsPerUser} progress streams may be open at once: close one first`);
      }
    } catch (e) {
      const { status, body } = toErrorBody(e, req.id);
      return reply.status(status).send(body);
    }
    const given = lastEventIdHeader ?? lastEventIdQuery;
    const raw = openEventStream(req, reply);
    const gone = new AbortController();
    req.raw.on('close', () => gone.abort());
    // The client may have gone while the slot was being taken: 'close' has fired already.
    if (req.raw.socket?.destroyed) gone.abort();
    const finalState = TERMINAL_STEPS.includes(job.status as JobStep)
      ? { jobId: id, step: job.status as JobStep, percent: job.progress, reason: job.reason ?? undefined, reasonCode: job.reason_code ?? undefined, at: Date.now() }
      : undefined;
    try {
      // ProgressHub runs the stream (replay, tail, end, heartbeats); this only frames what it yields.
      for await (const item of this.hub.follow(id, { cursor: isStreamId(given) ? given : undefined, finalState, heartbeatMs: this.config.shorts.heartbeatMs, signal: gone.signal })) {
        if (gone.signal.aborted) break;
        if (item.kind === 'heartbeat') {
          raw.write(SSE_HEARTBEAT);
          void this.quotas.renewSseSlot(userId, connId).catch(() => undefined);
        } else if (item.kind === 'event') {
          raw.write(sseEvent('progress', item.event.event, item.event.id));
        } else {
          raw.write(sseEvent('progress', item.event));
        }
      }
    } catch (err) {
      this.logger.warn({ err, jobId: id }, 'sse stream failed');
    } finally {
      raw.end();
      void this.quotas.releaseSseSlot(userId, connId).catch((err) => this.logger.warn({ err }, 'sse slot release failed'));
    }
  }
}
