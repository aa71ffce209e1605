/**
 * What the product function's routes answer, for the API description (shared/openapi.ts takes the
 * requests from the routes themselves): the schemas of its answers, and one description per route.
 */
import * as v from 'valibot'
import { IdOut, IntOut, TimeOut, pageOf, problem, type ApiDescription } from '../../shared/openapi.ts'

const INT_MAX = 2_147_483_647

/** A valibot schema of a product as the catalog answers it; `stock` is what can still be sold. */
export const Product = v.object({
  id: IdOut,
  name: v.string(),
  description: v.string(),
  price_cents: v.pipe(IntOut(0, INT_MAX), v.description('the price of one unit, in cents')),
  stock: v.pipe(IntOut(0, INT_MAX), v.description('units that can still be sold')),
  created_at: TimeOut,
  updated_at: TimeOut,
})

/** A valibot schema of a page of products. */
export const ProductPage = pageOf(Product)

const beans = {
  id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11',
  name: 'Espresso beans',
  description: '1 kg, dark roast',
  price_cents: 2450,
  stock: 12,
  created_at: '2025-01-15T09:30:00.000Z',
  updated_at: '2025-01-15T09:30:00.000Z',
}
const one = { beans: { value: beans } }
const missing = problem('there is no product with this id')

/** The product function's part of the API description. */
export const productApi: ApiDescription = {
  tag: { name: 'products', description: 'The catalog and its stock: anyone reads it, admins change it.' },
  schemas: { Product, ProductPage },
  operations: {
    'GET /api/products': {
      operationId: 'listProducts',
      summary: 'List products, newest first',
      parameters: {
        limit: 'products per page',
        offset: 'products to skip',
        q: 'only products whose name holds this text, in any case (`%` and `_` are plain characters)',
      },
      responses: { 200: { description: 'a page of products', body: ProductPage, examples: { page: { value: { items: [beans], total: 1, limit: 20, offset: 0 } } } } },
    },
    'GET /api/products/:id': {
      operationId: 'getProduct',
      summary: 'A product',
      parameters: { id: 'the product' },
      responses: { 200: { description: 'the product', body: Product, examples: one }, 404: missing },
    },
    'POST /api/products': {
      operationId: 'createProduct',
      summary: 'Add a product (admins)',
      description: '`description` defaults to "" and `stock` to 0.',
      requestExamples: { beans: { value: { name: 'Espresso beans', description: '1 kg, dark roast', price_cents: 2450, stock: 12 } } },
      responses: { 201: { description: 'the product', body: Product, examples: one } },
    },
    'PUT /api/products/:id': {
      operationId: 'replaceProduct',
      summary: 'Replace a product (admins)',
      description: 'The whole representation: every field is required (PATCH changes some).',
      parameters: { id: 'the product' },
      requestExamples: { beans: { value: { name: 'Espresso beans', description: '1 kg, dark roast', price_cents: 2450, stock: 12 } } },
      responses: { 200: { description: 'the product as it is now', body: Product, examples: one }, 404: missing },
    },
    'PATCH /api/products/:id': {
      operationId: 'updateProduct',
      summary: 'Change some fields of a product (admins)',
      description: 'At least one field.',
      parameters: { id: 'the product' },
      requestExamples: { price: { summary: 'a new price', value: { price_cents: 2600 } } },
      responses: { 200: { description: 'the product as it is now', body: Product, examples: { beans: { value: { ...beans, price_cents: 2600 } } } }, 404: missing },
    },
    'DELETE /api/products/:id': {
      operationId: 'deleteProduct',
      summary: 'Remove a product (admins)',
      parameters: { id: 'the product' },
      responses: { 204: { description: 'removed' }, 404: missing },
    },
    'POST /api/products/:id/stock': {
      operationId: 'adjustStock',
      summary: 'Add to or take from the stock (admins)',
      description: 'Atomic: concurrent adjustments never take the stock below 0.',
      parameters: { id: 'the product' },
      requestExamples: { sold: { summary: 'three sold elsewhere', value: { delta: -3 } } },
      responses: {
        200: { description: 'the product with its new stock', body: Product, examples: { beans: { value: { ...beans, stock: 9 } } } },
        404: missing,
        409: problem('the stock would go below 0, or past 2^31 − 1'),
      },
    },
  },
}
