import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { FacetsService } from './facets.service.js';

@ApiTags('catalog')
@Controller()
export class FacetsController {
  constructor(private readonly facets: FacetsService) {}

  @Get('categories/:code/facets')
  @ApiOperation({ summary: 'Counts per value of every indexed enum attribute, optionally within attr.* filters' })
  counts(@Param('code') code: string, @Query() query: Record<string, unknown>) {
    return this.facets.counts(code, query);
  }
}
