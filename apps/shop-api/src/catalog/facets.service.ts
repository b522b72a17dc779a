/**
 * FacetsService: GET /categories/:code/facets[?attr.…] — counts per value of every enum attribute whose
 * index is ready, within the products matching the (optional) filters. Each count is a GROUP BY over the
 * (category_id, generated column) index or the product_attribute_values primary key; enum attributes
 * without a ready index are listed, not scanned.
 */
import { Injectable } from '@nestjs/common';
import { ApiError } from '#libs/core';
import { AttributeFilter, columnName } from '#libs/attributes';
import { ReplicaRouter, type Runner } from '#libs/db';
import { AttributesService } from './attributes.service.js';
import { ProductsRepository } from './products.repository.js';

export interface FacetCounts {
  category: string;
  total: number;
  facets: Record<string, Record<string, number>>;
  unindexed: string[];
}

@Injectable()
export class FacetsService {
  constructor(
    private readonly router: ReplicaRouter,
    private readonly repo: ProductsRepository,
    private readonly attributes: AttributesService,
  ) {}

  async counts(code: string, query: Record<string, unknown>): Promise<FacetCounts> {
    return this.router.read((read, node) => this.attributes.onIndexedNode(read, node, (on) => this.countOn(on, code, query)));
  }

  private async countOn(ds: Runner, code: string, query: Record<string, unknown>): Promise<FacetCounts> {
    const category = /^[a-z][a-z0-9-]{0,63}$/.test(code) ? await this.repo.categoryByCode(code, ds) : null;
    if (!category) throw ApiError.notFound('category');
    const schema = this.attributes.schemaOf(category);
    const ready = await this.attributes.readyIndexes(category.id, ds);
    const filter = new AttributeFilter(schema, category.id, ready).compile(query, []);
    const where = ['p.category_id = ?', ...filter.where].join(' AND ');
    const params = [category.id, ...filter.params];
    const [{ n }] = await ds.query(`SELECT COUNT(*) AS n FROM products p WHERE ${where}`, params);
    const out: FacetCounts = { category: category.code, total: Number(n), facets: {}, unindexed: [] };
    for (const def of schema.attributes.values()) {
      if (def.kind !== 'enum' && def.kind !== 'enum-array') continue;
      if (!ready.has(def.name)) {
        out.unindexed.push(def.name);
        continue;
      }
      const rows: { v: string; n: string }[] =
        def.kind === 'enum'
          ? await ds.query(`SELECT p.\`${columnName(category.id, def.name)}\` AS v, COUNT(*) AS n FROM products p WHERE ${where} GROUP BY v`, params)
          : await ds.query(
              `SELECT v.value AS v, COUNT(*) AS n FROM product_attribute_values v JOIN products p ON p.id = v.product_id
                WHERE v.category_id = ? AND v.attribute = ? AND ${where} GROUP BY v.value`,
              [category.id, def.name, ...params],
            );
      const counts: Record<string, number> = Object.fromEntries(def.values!.map((v) => [v, 0]));
      for (const r of rows) if (r.v !== null && r.v in counts) counts[r.v] = Number(r.n);
      out.facets[def.name] = counts;
    }
    return out;
  }
}
