/**
 * Serves the console page (apps/web/public/console.*) at /console and uPlot's browser build from
 * node_modules at /console/uplot.*: a fixed allow-list (web/static-files.ts), no CDN.
 */
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CSS, HTML, JS, StaticFiles } from '../web/static-files.js';

const FILES = new StaticFiles({
  'console.html': ['apps/web/public/console.html', HTML],
  'console.js': ['apps/web/public/console.js', JS],
  'console.css': ['apps/web/public/console.css', CSS],
  'uplot.min.js': ['node_modules/uplot/dist/uPlot.iife.min.js', JS],
  'uplot.min.css': ['node_modules/uplot/dist/uPlot.min.css', CSS],
});

@ApiExcludeController()
@Controller('console')
export class ConsoleWebController {
  @Get()
  page(@Res() reply: FastifyReply) {
    return FILES.send('console.html', reply);
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() reply: FastifyReply) {
    return FILES.send(file, reply);
  }
}
