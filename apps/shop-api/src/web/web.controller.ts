/**
 * Serves My page (apps/web/public) at / and /web/*, and tus-js-client's browser build from node_modules.
 */
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CSS, HTML, JS, StaticFiles } from './static-files.js';

const FILES = new StaticFiles({
  'index.html': ['apps/web/public/index.html', HTML],
  'app.js': ['apps/web/public/app.js', JS],
  'style.css': ['apps/web/public/style.css', CSS],
  'tus.min.js': ['node_modules/tus-js-client/dist/tus.min.js', JS],
});

@ApiExcludeController()
@Controller()
export class WebController {
  @Get()
  index(@Res() reply: FastifyReply) {
    return FILES.send('index.html', reply);
  }

  @Get('web/:file')
  file(@Param('file') file: string, @Res() reply: FastifyReply) {
    return FILES.send(file, reply);
  }
}
