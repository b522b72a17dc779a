import { Module } from '@nestjs/common';
import { WebController } from './web.controller.js';

/** The browser pages of apps/web: My page here; the console page is served by ConsoleModule (admin tooling). */
@Module({ controllers: [WebController] })
export class WebModule {}
