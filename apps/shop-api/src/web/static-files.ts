/**
 * The browser pages' files (apps/web/public, and browser builds of libraries from node_modules), served from a
 * fixed allow-list: no path from the request reaches the filesystem. Without @fastify/static, which jest's ESM
 * loader cannot load. A Map, not an object literal: a name like 'constructor' or '__proto__' must not find
 * Object.prototype.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyReply } from 'fastify';
import { ApiError, repoRoot } from '#libs/core';

export const JS = 'text/javascript; charset=utf-8';
export const CSS = 'text/css; charset=utf-8';
export const HTML = 'text/html; charset=utf-8';

export class StaticFiles {
  private readonly files: Map<string, [string, string]>;

  /** name → [path from the repository root, content type] */
  constructor(files: Record<string, [string, string]>) {
    this.files = new Map(Object.entries(files));
  }

  async send(name: string, reply: FastifyReply): Promise<void> {
    const f = this.files.get(name);
    if (!f) throw ApiError.notFound('file');
    const body = await readFile(join(repoRoot(), f[0])).catch(() => undefined);
    if (!body) throw ApiError.notFound('file');
    await reply.header('content-type', f[1]).header('cache-control', 'no-cache').send(body);
  }
}
