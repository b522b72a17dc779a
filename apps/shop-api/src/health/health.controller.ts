import { Controller, Get, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Metrics } from '#libs/core';
import type { AuthUser } from '../auth/auth.guard.js';
import { HealthService } from './health.service.js';
import { isAdmin, OptionalAuthGuard } from './optional-auth.guard.js';

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
  @UseGuards(OptionalAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Readiness per node (up/degraded/down, replica lag within the limit); an admin token adds details: errors, hosts, GTIDs, latencies' })
  async ready(@Req() req: { user?: AuthUser }, @Res({ passthrough: true }) reply: FastifyReply) {
    const report = isAdmin(req) ? await this.health.report() : await this.health.publicReport();
    if (report.status === 'down') reply.status(503);
    return report;
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics' })
  async metricsText(@Res() reply: FastifyReply) {
    void reply.header('content-type', this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}
