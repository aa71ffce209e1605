/**
 * The catalog (`GET /`, with `?q=` search and `?page=`) and a product's page (`GET /products/:id`),
 * with its add-to-cart form (which posts to `POST /cart/items`, cart.tsx).
 */
import type { Hono } from 'hono'
import * as v from 'valibot'
import { Uuid } from '../../../shared/validate.ts'
import type { PageDeps } from '../app.tsx'
import { problemErrors, type FieldErrors } from '../forms.ts'
import type { Product } from '../shop.ts'
import { Availability, Csrf, Field, FormError, Layout, Pager, Price, Tile, render, type PageContext } from '../views.tsx'
import { pageContext, pageNumber } from './guards.tsx'

/** Products on one page of the catalog. */
export const CATALOG_PAGE_SIZE = 12

/** The routes of the catalog and the product pages. */
export function catalogPages(app: Hono, { shop, sessions }: PageDeps) {
  app.get('/', async (c) => {
    const q = c.req.query('q')?.trim() ?? ''
    const page = pageNumber(c.req.query('page'))
    const listed = await shop.products({ q: q || undefined, limit: CATALOG_PAGE_SIZE, offset: (page - 1) * CATALOG_PAGE_SIZE })
    const ctx = await pageContext(c, sessions)
    if (!listed.ok) {
      const errors = problemErrors(listed.problem, (path) => (path === 'q' ? 'q' : undefined))
      return render(c, <CatalogPage ctx={ctx} q={q} page={page} products={[]} total={0} errors={errors} />, 400)
    }
    return render(c, <CatalogPage ctx={ctx} q={q} page={page} products={listed.value.items} total={listed.value.total} />)
  })

  app.get('/products/:id', async (c) => {
    const id = v.safeParse(Uuid, c.req.param('id'))
    if (!id.success) return c.notFound()
    const found = await shop.product(id.output)
    if (!found.ok) return c.notFound()
    return render(c, <ProductPage ctx={await pageContext(c, sessions)} product={found.value} />)
  })
}

type CatalogProps = { ctx: PageContext; q: string; page: number; products: Product[]; total: number; errors?: FieldErrors }

function CatalogPage({ ctx, q, page, products, total, errors }: CatalogProps) {
  const pages = Math.max(1, Math.ceil(total / CATALOG_PAGE_SIZE))
  const href = (p: number) => `/?${new URLSearchParams({ ...(q ? { q } : {}), ...(p > 1 ? { page: String(p) } : {}) })}`.replace(/\?$/, '')
  return (
    <Layout {...ctx} title={q ? `Search: ${q}` : 'Catalog'}>
      <h1>{q ? `Results for “${q}”` : 'Catalog'}</h1>
      <form class="search" method="get" action="/" role="search">
        <label for="f-q">Search the catalog</label>
        <input id="f-q" type="search" name="q" value={q} placeholder="Search products" aria-invalid={errors?.q ? 'true' : undefined} aria-describedby={errors?.q ? 'f-q-error' : undefined} />
        <button type="submit">Search</button>
      </form>
      {errors?.q ? (
        <p class="error" id="f-q-error">
          {errors.q}
        </p>
      ) : null}
      <FormError errors={errors} />
      {errors ? null : (
        <p class="hint">{total === 1 ? '1 product' : `${total} products`}</p>
      )}
      {products.length ? (
        <ul class="grid">
          {products.map((p) => (
            <li>
              <article class="card">
                <Tile id={p.id} name={p.name} />
                <h2>
                  <a href={`/products/${p.id}`}>{p.name}</a>
                </h2>
                <p class="desc">{p.description && p.description.length > 110 ? `${p.description.slice(0, 110)}…` : p.description}</p>
                <div class="row">
                  <Price cents={p.price_cents} />
                  <Availability stock={p.stock} />
                </div>
              </article>
            </li>
          ))}
        </ul>
      ) : errors ? null : (
        <p class="empty">{q ? 'No product matches your search.' : 'There is nothing on this page.'}</p>
      )}
      <Pager page={page} pages={pages} href={href} label="Catalog pages" />
    </Layout>
  )
}

type ProductProps = { ctx: PageContext; product: Product; errors?: FieldErrors; quantity?: string }

/** A product's page: name, price, what is left, the description, and the add-to-cart form (a login link for someone not signed in). */
export function ProductPage({ ctx, product: p, errors, quantity }: ProductProps) {
  const soldOut = p.stock <= 0
  return (
    <Layout {...ctx} title={p.name}>
      <p>
        <a href="/">← Catalog</a>
      </p>
      <div class="product">
        <Tile id={p.id} name={p.name} big />
        <div>
          <h1>{p.name}</h1>
          <p>
            <Price cents={p.price_cents} /> · <Availability stock={p.stock} />
          </p>
          {p.description ? <p>{p.description}</p> : null}
          <FormError errors={errors} />
          {soldOut ? (
            <div class="buy">
              <button type="button" class="big" disabled>
                Sold out
              </button>
            </div>
          ) : ctx.session?.user ? (
            <form method="post" action="/cart/items" class="buy">
              <Csrf session={ctx.session} />
              <input type="hidden" name="product_id" value={p.id} />
              <Field name="quantity" label="Quantity" type="number" min={1} max={Math.min(999, p.stock)} value={quantity ?? '1'} errors={errors} required autofocus={Boolean(errors?.quantity)} />
              <button type="submit" class="big">
                Add to cart
              </button>
            </form>
          ) : (
            <div class="buy">
              <a class="button big" href={`/login?next=${encodeURIComponent(`/products/${p.id}`)}`}>
                Log in to buy
              </a>
            </div>
          )}
        </div>
      </div>
    </Layout>
  )
}
