import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ApiError } from '#libs/core';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuthGuard, Roles } from '../auth/auth.guard.js';
import { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';
import { ProductsService } from './products.service.js';

@ApiTags('catalog')
@Controller()
export class ProductsController {
  constructor(private readonly products: ProductsService) {}

  /** Through ProductCache; X-Cache says which tier answered: l1 | l2 | db | coalesced | negative. */
  @Get('products/:id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const { value, source } = await this.products.read(id);
    void reply.header('x-cache', source);
    if (!value) throw ApiError.notFound('product');
    return value;
  }

  /** A category's products (id order, keyset cursor): page ids and products both through ProductCache. */
  @Get('categories/:code/products')
  async categoryProducts(@Param('code') code: string, @Query('cursor') cursor: string | undefined, @Query('limit') limit: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    const page = await this.products.categoryProducts(code, cursor, limit);
    void reply.header('x-cache', page.source);
    return { items: page.items, nextCursor: page.nextCursor };
  }

  @Get('categories')
  categories() {
    return this.products.categories();
  }

  @Get('categories/:code')
  category(@Param('code') code: string) {
    return this.products.category(code);
  }

  @Post('products')
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Roles('admin')
  create(@Body() dto: CreateProductDto) {
    return this.products.create(dto);
  }

  @Patch('products/:id')
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Roles('admin')
  update(@Param('id') id: string, @Body() dto: UpdateProductDto) {
    return this.products.update(id, dto);
  }

  @Delete('products/:id')
  @HttpCode(204)
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Roles('admin')
  async remove(@Param('id') id: string) {
    await this.products.remove(id);
  }
}
