import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { DbNodes } from '#libs/db';
import { AuthGuard, Roles } from '../auth/auth.guard.js';

@ApiTags('ops')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Roles('admin')
@Controller('admin')
export class AdminController {
  constructor(private readonly db: DbNodes) {}

  /** The database nodes this instance talks to, with the dialect detected from each server's version. */
  @Get('nodes')
  nodes() {
    return this.db.all().map((n) => ({ name: n.name, role: n.role, host: n.url.host, port: n.url.port, database: n.url.database, dialect: n.dialect.name, version: n.dialect.version }));
  }
}
