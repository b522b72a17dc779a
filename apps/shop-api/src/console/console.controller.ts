/**
 * The trade-off console's API (docs/console.md), admin only:
 *  - GET /admin/console/stream: Server-Sent Events, one `snapshot` event per CONSOLE_STREAM_INTERVAL_MS
 *    (topology + rates, ConsoleSampler); the page reads it with fetch (an Authorization header, which
 *    EventSource cannot send).
 *  - GET /admin/console/snapshot: one snapshot as JSON.
 * The experiment routes live in ExperimentsController, registered only with CONSOLE_EXPERIMENTS=on.
 */
import { Controller, Get, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, Settings } from '#libs/core';
import { AuthGuard, Roles } from '../auth/auth.guard.js';
import { openEventStream, sseEvent } from '../http/event-stream.js';
import { ExperimentRunner } from './experiment-runner.js';
import { ConsoleSampler } from './sampler.js';

@ApiTags('console')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Roles('admin')
@Controller('admin/console')
export class ConsoleController {
  constructor(
    private readonly sampler: ConsoleSampler,
    private readonly config: Settings,
    private readonly runner: ExperimentRunner,
  ) {}

  @Get('snapshot')
  @ApiOperation({ summary: 'The console topology and rates once (the same data as /health and /metrics)' })
  async snapshot() {
    return { ...(await this.sampler.snapshot()), experiments: this.config.console.experiments ? this.runner.status() : null };
  }

  @Get('stream')
  @ApiOperation({ summary: 'Server-Sent Events: a `snapshot` event about once a second (topology, rates, the running experiment)' })
  stream(@Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    const raw = openEventStream(req, reply);
    // HEAD: the headers and nothing else (Node drops a HEAD response's body, so only ending it flushes them).
    if (req.method === 'HEAD') return void raw.end();
    const experiments = this.config.console.experiments;
    let unsubscribe = () => undefined as void;
    const close = () => {
      unsubscribe();
      raw.end();
    };
    unsubscribe = this.sampler.subscribe((s) => {
      raw.write(sseEvent('snapshot', { ...s, experiments: experiments ? this.runner.status() : null }));
    }, close);
    raw.on('close', close);
    raw.on('error', close);
  }
}

/** POST/GET /admin/console/experiments[/:name]: only registered with CONSOLE_EXPERIMENTS=on (404 otherwise). */
@ApiTags('console')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Roles('admin')
@Controller('admin/console/experiments')
export class ExperimentsController {
  constructor(
    private readonly runner: ExperimentRunner,
    private readonly adapter: HttpAdapterHost,
  ) {}

  /** This instance on loopback (the experiments' load goes through the real routes, never elsewhere). */
  private baseUrl(): string {
    const addr = this.adapter.httpAdapter.getHttpServer().address();
    if (!addr || typeof addr === 'string') throw new ApiError(503, 'unavailable', 'the server is not listening on a TCP port');
    const host = addr.address === '::' || addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  }

  @Get()
  @ApiOperation({ summary: 'The experiments (name, one-line explanation, docs page), the running one and the last results' })
  list() {
    return { experiments: this.runner.list(), ...this.runner.status() };
  }

  @Get(':name')
  @ApiOperation({ summary: "An experiment's running or last run (404 when it never ran)" })
  one(@Param('name') name: string) {
    const run = this.runner.get(name);
    if (!run) throw ApiError.notFound('experiment run');
    return run;
  }

  @Post(':name')
  @HttpCode(202)
  @ApiOperation({ summary: 'Start an experiment (one at a time: 409 while another runs); bounded by CONSOLE_EXPERIMENT_MAX_S, always undone' })
  start(@Param('name') name: string) {
    return this.runner.start(name, this.baseUrl()).state;
  }
}
