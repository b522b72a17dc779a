/**
 * FiltersService: GET /products?category=laptop&attr.ramGb[gte]=16&attr.cpu[in]=M3,M4&sort=price&cursor=…
 * The attribute conditions come from AttributeFilter (declared, indexed attributes only; values bound as
 * parameters); paging is keyset (the cursor is the last row's sort key), so page 500 costs what page 1 does.
 */
import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { AttributeFilter, echo, type AppliedFilter } from '#libs/attributes';
import { ReplicaRouter, type DbNode, type Runner } from '#libs/db';
import { AttributesService } from './attributes.service.js';
import { ProductsRepository, toProduct, type Category, type Product } from './products.repository.js';

export const FILTER_PARAMS = ['category', 'sort', 'cursor', 'limit'] as const;
const SORTS = ['id', 'price', '-price'] as const;
type Sort = (typeof SORTS)[number];

export interface ProductPage {
  items: Product[];
  nextCursor: string | null;
  filters: AppliedFilter[];
}

function one(query: Record<string, unknown>, key: string): string | undefined {
  const v = query[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 200) throw ApiError.badRequest(`${key} must be given once, as short text`);
  return v;
}

@Injectable()
export class FiltersService {
  constructor(
    private readonly router: ReplicaRouter,
    private readonly repo: ProductsRepository,
    private readonly attributes: AttributesService,
  ) {}

  async category(query: Record<string, unknown>, on: Runner): Promise<Category> {
    const code = one(query, 'category');
    if (!code) throw ApiError.badRequest('category is required (e.g. ?category=laptop)');
    const c = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.repo.categoryByCode(code, on) : null;
    if (!c) throw ApiError.badRequest(`unknown category ${echo(code)}`);
    return c;
  }

  /**
   * The SQL a filter runs, with its parameters (tests EXPLAIN exactly this). The index states are read on
   * the node that runs the query: a replica that has not applied a promotion yet does not use its column.
   */
  async buildQuery(query: Record<string, unknown>, on: Runner): Promise<{ sql: string; params: unknown[]; applied: AppliedFilter[]; sort: Sort; limit: number }> {
    const category = await this.category(query, on);
    const schema = this.attributes.schemaOf(category);
    const filter = new AttributeFilter(schema, category.id, await this.attributes.readyIndexes(category.id, on)).compile(query, FILTER_PARAMS);
    const sort = (one(query, 'sort') ?? 'id') as Sort;
    if (!SORTS.includes(sort)) throw ApiError.badRequest(`sort must be one of ${SORTS.join(', ')}`);
    const limitText = one(query, 'limit') ?? '20';
    if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 100) throw ApiError.badRequest('limit must be an integer from 1 to 100');
    const limit = Number(limitText);
    const where = ['p.category_id = ?', ...filter.where];
    const params: unknown[] = [category.id, ...filter.params];
    const cursor = this.decodeCursor(one(query, 'cursor'), sort);
    if (cursor && sort === 'id') {
      where.push('p.id > ?');
      params.push(cursor[0]);
    } else if (cursor) {
      where.push(sort === 'price' ? '(p.price_cents > ? OR (p.price_cents = ? AND p.id > ?))' : '(p.price_cents < ? OR (p.price_cents = ? AND p.id < ?))');
      params.push(cursor[0], cursor[0], cursor[1]);
    }
    const order = sort === 'id' ? 'p.id' : sort === 'price' ? 'p.price_cents, p.id' : 'p.price_cents DESC, p.id DESC';
    const sql = `SELECT p.id, p.category_id, c.code AS category_code, p.name, p.price_cents, p.stock, p.attributes, p.version, p.updated_at
      FROM products p JOIN categories c ON c.id = p.category_id
     WHERE ${where.join(' AND ')}
     ORDER BY ${order} LIMIT ?`;
    return { sql, params: [...params, limit + 1], applied: filter.applied, sort, limit };
  }

  async search(query: Record<string, unknown>): Promise<ProductPage> {
    return this.router.read((on, node) => this.searchOn(query, on, node));
  }

  /** One page, read on `on` (the node the router picked), or on the primary while `node` lags a promotion. */
  async searchOn(query: Record<string, unknown>, read: Runner, node: DbNode): Promise<ProductPage> {
    const { q, rows } = await this.attributes.onIndexedNode(read, node, async (on) => {
      const q = await this.buildQuery(query, on);
      return { q, rows: await on.query(q.sql, q.params) };
    });
    const items = rows.slice(0, q.limit).map(toProduct);
    const last = items[items.length - 1];
    const nextCursor = rows.length > q.limit && last ? Buffer.from(JSON.stringify(q.sort === 'id' ? [last.id] : [last.priceCents, last.id])).toString('base64url') : null;
    return { items, nextCursor, filters: q.applied };
  }

  private decodeCursor(raw: string | undefined, sort: Sort): string[] | null {
    if (raw === undefined) return null;
    const bad = () => ApiError.badRequest('cursor is not a cursor returned by this endpoint for this sort');
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    } catch {
      throw bad();
    }
    const n = sort === 'id' ? 1 : 2;
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => (typeof x === 'string' || typeof x === 'number') && /^\d{1,19}$/.test(String(x)))) throw bad();
    return v.map(String);
  }
}
