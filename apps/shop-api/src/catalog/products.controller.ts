import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuthGuard, Roles } from '../auth/auth.guard.js';
import { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';
import { ProductsService } from './products.service.js';

@ApiTags('catalog')
@Controller()
export class ProductsController {
  constructor(private readonly products: ProductsService) {}

  @Get('products/:id')
  get(@Param('id') id: string) {
    return this.products.get(id);
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
