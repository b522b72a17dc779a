/**
 * Serves apps/web/public (My page) at / and /web/*, and tus-js-client's browser build from node_modules,
 * without @fastify/static (which jest's ESM loader cannot load). A fixed allow-list of files, no paths
 * from the request reach the filesystem.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiError, repoRoot } from '#libs/core';

// A Map, not an object literal: a name like 'constructor' or '__proto__' must not find Object.prototype.
const FILES = new Map<string, [string, string]>(Object.entries({
  'index.html': ['apps/web/public/index.html', 'text/html; charset=utf-8'],
  'app.js': ['apps/web/public/app.js', 'text/javascript; charset=utf-8'],
  'style.css': ['apps/web/public/style.css', 'text/css; charset=utf-8'],
  'tus.min.js': ['node_modules/tus-js-client/dist/tus.min.js', 'text/javascript; charset=utf-8'],
} satisfies Record<string, [string, string]>));

@ApiExcludeController()
@Controller()
export class WebController {
  private async send(name: string, reply: FastifyReply) {
    const f = FILES.get(name);
    if (!f) throw ApiError.notFound('file');
    const body = await readFile(join(repoRoot(), f[0])).catch(() => undefined);
    if (!body) throw ApiError.notFound('file');
    await reply.header('content-type', f[1]).header('cache-control', 'no-cache').send(body);
  }

  @Get()
  index(@Res() reply: FastifyReply) {
    return this.send('index.html', reply);
  }

  @Get('web/:file')
  file(@Param('file') file: string, @Res() reply: FastifyReply) {
    return this.send(file, reply);
  }
}
