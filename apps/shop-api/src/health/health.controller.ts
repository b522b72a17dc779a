import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Metrics } from '#libs/core';
import { HealthService } from './health.service.js';

@ApiTags('ops')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthService,
    private readonly metrics: Metrics,
  ) {}

  @Get('health/live')
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency is touched)' })
  live() {
    return { status: 'ok' };
  }

  @Get('health')
  @ApiOperation({ summary: 'Readiness per node: primary, each replica with its lag, each shard, both Redis' })
  async ready(@Res({ passthrough: true }) reply: FastifyReply) {
    const report = await this.health.report();
    if (report.status === 'down') reply.status(503);
    return report;
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics' })
  async metricsText(@Res() reply: FastifyReply) {
    void reply.header('content-type', this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}
