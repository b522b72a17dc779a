import { Module } from '@nestjs/common';
import { ProductsController } from './products.controller.js';
import { ProductsRepository } from './products.repository.js';
import { ProductsService } from './products.service.js';
import { catalogCacheProvider, CatalogCacheLifecycle } from './product-cache.provider.js';
import { AttributesService } from './attributes.service.js';
import { AttributesController } from './attributes.controller.js';
import { FiltersService } from './filters.service.js';
import { FiltersController } from './filters.controller.js';
import { FacetsService } from './facets.service.js';
import { FacetsController } from './facets.controller.js';
import { EdgePurgerLifecycle } from './edge-purger.provider.js';
import { StockReservation } from './stock-reservation.js';

/** Products, categories, attributes and stock (StockReservation: the one writer of products.stock, used by orders). */
@Module({
  controllers: [ProductsController, FiltersController, FacetsController, AttributesController],
  providers: [ProductsRepository, ProductsService, AttributesService, FiltersService, FacetsService, StockReservation, catalogCacheProvider, CatalogCacheLifecycle, EdgePurgerLifecycle],
  exports: [ProductsRepository, ProductsService, StockReservation, catalogCacheProvider],
})
export class CatalogModule {}
