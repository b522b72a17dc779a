/**
 * Serves the console page (apps/web/public/console.*) at /console and uPlot's browser build from
 * node_modules at /console/uplot.*: a fixed allow-list like My page's WebController, no CDN.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiError, repoRoot } from '#libs/core';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const FILES = new Map<string, [string, string]>(Object.entries({
  'console.html': ['apps/web/public/console.html', 'text/html; charset=utf-8'],
  'console.js': ['apps/web/public/console.js', JS],
  'console.css': ['apps/web/public/console.css', CSS],
  'uplot.min.js': ['node_modules/uplot/dist/uPlot.iife.min.js', JS],
  'uplot.min.css': ['node_modules/uplot/dist/uPlot.min.css', CSS],
} satisfies Record<string, [string, string]>));

@ApiExcludeController()
@Controller('console')
export class ConsoleWebController {
  private async send(name: string, reply: FastifyReply) {
    const f = FILES.get(name);
    if (!f) throw ApiError.notFound('file');
    const body = await readFile(join(repoRoot(), f[0])).catch(() => undefined);
    if (!body) throw ApiError.notFound('file');
    await reply.header('content-type', f[1]).header('cache-control', 'no-cache').send(body);
  }

  @Get()
  page(@Res() reply: FastifyReply) {
    return this.send('console.html', reply);
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() reply: FastifyReply) {
    return this.send(file, reply);
  }
}
