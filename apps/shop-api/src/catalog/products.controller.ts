import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, Settings } from '#libs/core';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuthGuard, Roles } from '../auth/auth.guard.js';
import { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';
import { ProductsService } from './products.service.js';
import { encodedOf, isPersonal, productCacheControl, productHeaders } from './product-http.js';

@ApiTags('catalog')
@Controller()
export class ProductsController {
  constructor(
    private readonly products: ProductsService,
    private readonly settings: Settings,
  ) {}

  /**
   * Through ProductCache; X-Cache says which tier answered: l1 | l2 | db | coalesced | negative. Anonymous
   * reads are answered before Nest by the hot route (product-http.ts); this handler serves the rest (a
   * user's token: private, no-store) with the same bytes, ETag and 304.
   */
  @Get('products/:id')
  async get(@Param('id') id: string, @Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const r = await this.products.read(id);
    const enc = encodedOf(r);
    void reply.header('x-cache', r.source);
    if (!enc) throw ApiError.notFound('product');
    // A web Response carries its status past Nest's default 200 (a 304 has no body).
    if (productHeaders(reply, req.headers, enc, r.source, productCacheControl(this.settings.cache, isPersonal(req.headers)))) return new Response(null, { status: 304 });
    void reply.header('content-type', 'application/json; charset=utf-8');
    return enc.body;
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
