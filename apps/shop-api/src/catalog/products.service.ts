import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { ProductsRepository, type Product } from './products.repository.js';
import type { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';
import { ReplicaRouter } from '#libs/db';

export function parseId(raw: string, what = 'id'): string {
  if (!/^[1-9][0-9]{0,18}$/.test(raw) || BigInt(raw) >= 1n << 63n) throw ApiError.badRequest(`${what} must be a positive integer`);
  return raw;
}

@Injectable()
export class ProductsService {
  constructor(
    private readonly repo: ProductsRepository,
    /** Reads go to replicas (with the request's consistency token); writes go to the primary. */
    private readonly router: ReplicaRouter,
  ) {}

  async get(id: string): Promise<Product> {
    const pid = parseId(id);
    const p = await this.router.read((on) => this.repo.findById(pid, on));
    if (!p) throw ApiError.notFound('product');
    return p;
  }

  async create(dto: CreateProductDto): Promise<Product> {
    const { value: product } = await this.router.write(async (on) => {
      const category = await this.repo.categoryByCode(dto.categoryCode, on);
      if (!category) throw ApiError.unprocessable(`unknown category '${dto.categoryCode}'`, [{ field: 'categoryCode', problems: ['unknown category'] }]);
      const id = await this.repo.insert({ categoryId: category.id, name: dto.name, priceCents: dto.priceCents, stock: dto.stock, attributes: dto.attributes }, on);
      return (await this.repo.findById(id, on))!;
    });
    return product;
  }

  async update(id: string, dto: UpdateProductDto): Promise<Product> {
    parseId(id);
    const { value: product } = await this.router.write(async (on) => {
      if (!(await this.repo.update(id, dto, on))) throw ApiError.notFound('product');
      return (await this.repo.findById(id, on))!;
    });
    return product;
  }

  async remove(id: string): Promise<void> {
    const { value: deleted } = await this.router.write((on) => this.repo.delete(parseId(id), on));
    if (!deleted) throw ApiError.notFound('product');
  }

  categories() {
    return this.router.read((on) => this.repo.categories(on));
  }

  async category(code: string) {
    const c = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.router.read((on) => this.repo.categoryByCode(code, on)) : null;
    if (!c) throw ApiError.notFound('category');
    return c;
  }
}
