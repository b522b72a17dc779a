import { Controller, Delete, Get, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiError } from '#libs/core';
import { ATTRIBUTE_NAME, OPERATORS } from '#libs/attributes';
import { AuthGuard, Roles } from '../auth/auth.guard.js';
import { AttributesService } from './attributes.service.js';
import { ProductsService } from './products.service.js';

function attributeName(raw: string): string {
  if (!ATTRIBUTE_NAME.test(raw)) throw ApiError.badRequest('attribute name must be letters and digits, starting with a letter');
  return raw;
}

@ApiTags('catalog')
@Controller()
export class AttributesController {
  constructor(
    private readonly attributes: AttributesService,
    private readonly products: ProductsService,
  ) {}

  @Get('categories/:code/attributes')
  @ApiOperation({ summary: 'Declared attributes of a category: type, unit, filterable, operators, index state' })
  async list(@Param('code') code: string) {
    const category = await this.products.category(code);
    const indexes = new Map((await this.attributes.indexes(category.id)).map((i) => [i.attribute, i]));
    return [...this.attributes.schemaOf(category).attributes.values()].map((a) => ({
      ...a,
      operators: a.filterable ? OPERATORS[a.kind] : [],
      index: indexes.get(a.name) ?? null,
    }));
  }

  @Post('admin/categories/:code/attributes/:name/promote')
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Roles('admin')
  @ApiOperation({ summary: 'Make an attribute filterable: generated column + index (or values rows for arrays), online' })
  async promote(@Param('code') code: string, @Param('name') name: string) {
    await this.products.categoryOnPrimary(code);
    return this.attributes.promote(code, attributeName(name));
  }

  @Delete('admin/categories/:code/attributes/:name/index')
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Roles('admin')
  @ApiOperation({ summary: 'Stop filtering on an attribute: drop its index and generated column (the data stays)' })
  async unindex(@Param('code') code: string, @Param('name') name: string) {
    await this.products.categoryOnPrimary(code);
    return { statements: await this.attributes.unindex(code, attributeName(name)) };
  }
}
