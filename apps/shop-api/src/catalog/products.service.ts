import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { ProductsRepository, type Product } from './products.repository.js';
import type { CreateProductDto, UpdateProductDto } from './dto/product.dto.js';
import type { CacheSource, CategoryPage, Encoded } from '#libs/cache';
import { CatalogCache } from './product-cache.provider.js';
import { ReplicaRouter, retryOnDeadlock } from '#libs/db';
import { AttributesService } from './attributes.service.js';

export function parseId(raw: string, what = 'id'): string {
  if (!/^[1-9][0-9]{0,18}$/.test(raw) || BigInt(raw) >= 1n << 63n) throw ApiError.badRequest(`${what} must be a positive integer`);
  return raw;
}

@Injectable()
export class ProductsService {
  constructor(
    private readonly repo: ProductsRepository,
    private readonly cache: CatalogCache,
    /** Cache misses and lists read replicas (with the request's consistency token); writes go to the primary. */
    private readonly router: ReplicaRouter,
    /** Validates attributes against the category schema and keeps array values in step (one transaction). */
    private readonly attributes: AttributesService,
  ) {}

  /**
   * Read-through ProductCache (L1 → L2 → database); `source` is the tier that answered (X-Cache header).
   * The loader is the seam where ReplicaRouter plugs in: the cache only sees a function.
   */
  async read(id: string): Promise<{ value: Product | null; source: CacheSource }> {
    const pid = parseId(id);
    // A replica row older than the last write is refused by the cache; the caller then gets the primary's.
    return this.cache.product(pid, () => this.router.read((on) => this.repo.findById(pid, on)), () => this.repo.findById(pid, this.router.primary));
  }

  /** `read` when L1 holds the product: answered synchronously (the hot route's L1 hit), else undefined. */
  readLocal(id: string): { value: Product | null; source: CacheSource; encoded?: Encoded } | undefined {
    return this.cache.productLocal(parseId(id));
  }

  /** A category's products by id order, keyset-paginated; pages hold ids, products come from the cache. */
  async categoryProducts(code: string, cursor: string | undefined, limit: string | undefined): Promise<CategoryPage<Product>> {
    if (!/^[a-z][a-z0-9-]{0,63}$/.test(code)) throw ApiError.notFound('category');
    if ((cursor !== undefined && typeof cursor !== 'string') || (limit !== undefined && typeof limit !== 'string')) throw ApiError.badRequest('cursor and limit may be given once each');
    const after = cursor === undefined || cursor === '' ? null : parseId(cursor, 'cursor');
    const n = limit === undefined || limit === '' ? 20 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw ApiError.badRequest('limit must be an integer between 1 and 100');
    const page = await this.cache.categoryPage(
      code,
      after,
      n,
      () =>
        this.router.read(async (on) => {
          const category = await this.repo.categoryByCode(code, on);
          if (!category) return null;
          const rows = await this.repo.listByCategory(category.id, n, after, on);
          return { ids: rows.map((p) => p.id), nextCursor: rows.length === n ? rows[rows.length - 1].id : null };
        }),
      (pid) => this.router.read((on) => this.repo.findById(pid, on)),
      (pid) => this.repo.findById(pid, this.router.primary),
    );
    if (!page.found) throw ApiError.notFound('category');
    return page;
  }

  async get(id: string): Promise<Product> {
    const p = (await this.read(id)).value;
    if (!p) throw ApiError.notFound('product');
    return p;
  }

  async create(dto: CreateProductDto): Promise<Product> {
    const { value: product } = await retryOnDeadlock(() => this.router.transaction(async (on) => {
      const category = await this.repo.categoryByCode(dto.categoryCode, on);
      if (!category) throw ApiError.unprocessable(`unknown category '${dto.categoryCode}'`, [{ field: 'categoryCode', problems: ['unknown category'] }]);
      await this.attributes.accept(on, category, dto.attributes);
      const id = await this.repo.insert({ categoryId: category.id, name: dto.name, priceCents: dto.priceCents, stock: dto.stock, attributes: dto.attributes }, on);
      await this.attributes.syncValues(on, category, id, dto.attributes, true);
      return (await this.repo.findById(id, on))!;
    }));
    await this.cache.invalidateProduct(product.id, product.version); // a read of this id before it existed may be negatively cached
    return product;
  }

  async update(id: string, dto: UpdateProductDto): Promise<Product> {
    parseId(id);
    const { value: product } = await retryOnDeadlock(() => this.router.transaction(async (on) => {
      const category = dto.attributes === undefined ? null : await this.attributes.categoryOfProduct(on, id);
      if (category) await this.attributes.accept(on, category, dto.attributes);
      if (!(await this.repo.update(id, dto, on))) throw ApiError.notFound('product');
      if (category) await this.attributes.syncValues(on, category, id, dto.attributes!);
      return (await this.repo.findById(id, on))!;
    }));
    await this.cache.invalidateProduct(id, product.version); // after the commit: L2 + lease deleted, every L1 told, older rows refused
    return product;
  }

  async remove(id: string): Promise<void> {
    const { value: deleted } = await this.router.write((on) => this.repo.delete(parseId(id), on));
    if (!deleted) throw ApiError.notFound('product');
    await this.cache.invalidateProduct(id, 'deleted');
  }

  categories() {
    return this.router.read((on) => this.repo.categories(on));
  }

  async category(code: string) {
    const c = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.router.read((on) => this.repo.categoryByCode(code, on)) : null;
    if (!c) throw ApiError.notFound('category');
    return c;
  }

  /** For admin writes to a category: read where they write, as a replica lagging its creation would 404 it. */
  async categoryOnPrimary(code: string) {
    const c = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.repo.categoryByCode(code) : null;
    if (!c) throw ApiError.notFound('category');
    return c;
  }
}
