import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { FiltersService } from './filters.service.js';

@ApiTags('catalog')
@Controller()
export class FiltersController {
  constructor(private readonly filters: FiltersService) {}

  @Get('products')
  @ApiOperation({
    summary: 'Products of a category filtered by declared, indexed attributes',
    description:
      'attr.<name>[<op>]=<value> with op in eq, in, gte, lte, between, contains (by attribute type; eq when omitted). ' +
      'Lists and ranges are comma-separated: attr.cpu[in]=M3,M4, attr.ramGb[between]=16,64. Unknown attributes or operators answer 400 naming the allowed ones.',
  })
  @ApiQuery({ name: 'category', example: 'laptop' })
  @ApiQuery({ name: 'sort', required: false, enum: ['id', 'price', '-price'] })
  @ApiQuery({ name: 'cursor', required: false })
  @ApiQuery({ name: 'limit', required: false, example: 20 })
  list(@Query() query: Record<string, unknown>) {
    return this.filters.search(query);
  }
}
