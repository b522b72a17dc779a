import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { ProductsRepository, type Product } from './products.repository.js';
import type { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';

export function parseId(raw: string, what = 'id'): string {
  if (!/^[1-9][0-9]{0,18}$/.test(raw) || BigInt(raw) >= 1n << 63n) throw ApiError.badRequest(`${what} must be a positive integer`);
  return raw;
}

@Injectable()
export class ProductsService {
  constructor(private readonly repo: ProductsRepository) {}

  async get(id: string): Promise<Product> {
    const p = await this.repo.findById(parseId(id));
    if (!p) throw ApiError.notFound('product');
    return p;
  }

  async create(dto: CreateProductDto): Promise<Product> {
    const category = await this.repo.categoryByCode(dto.categoryCode);
    if (!category) throw ApiError.unprocessable(`unknown category '${dto.categoryCode}'`, [{ field: 'categoryCode', problems: ['unknown category'] }]);
    const id = await this.repo.insert({ categoryId: category.id, name: dto.name, priceCents: dto.priceCents, stock: dto.stock, attributes: dto.attributes });
    return (await this.repo.findById(id))!;
  }

  async update(id: string, dto: UpdateProductDto): Promise<Product> {
    parseId(id);
    if (!(await this.repo.update(id, dto))) throw ApiError.notFound('product');
    return (await this.repo.findById(id))!;
  }

  async remove(id: string): Promise<void> {
    if (!(await this.repo.delete(parseId(id)))) throw ApiError.notFound('product');
  }

  categories() {
    return this.repo.categories();
  }

  async category(code: string) {
    const c = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.repo.categoryByCode(code) : null;
    if (!c) throw ApiError.notFound('category');
    return c;
  }
}
