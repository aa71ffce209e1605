/**
 * The admin's pages: the catalog's products (`GET|POST /admin/products`: list, search, add;
 * `GET|POST /admin/products/:id`: edit; `POST /admin/products/:id/stock`: set the stock;
 * `POST /admin/products/:id/delete`) and every user's orders (`GET /admin/orders`, `?status=`
 * and `?page=`). A customer gets 403; someone not signed in, the login page.
 */
import type { Context, Hono } from 'hono'
import * as v from 'valibot'
import { Text, Uuid } from '../../../shared/validate.ts'
import type { PageDeps } from '../app.tsx'
import { priceField, problemErrors, readForm, requiredText, wholeNumber, type FieldErrors, type FormValues } from '../forms.ts'
import { ORDER_STATUSES, type Order, type Product } from '../shop.ts'
import { Csrf, Field, FormError, Layout, Pager, STATUS_LABELS, StatusBadge, firstInvalid, formatCents, formatTime, render, shortId, type PageContext } from '../views.tsx'
import { adminOnly, csrf, pageContext, pageNumber, userOf } from './guards.tsx'
import { itemsSummary } from './orders.tsx'

const INT_MAX = 2_147_483_647
/** Products, or orders, on one page of the admin's lists. */
export const ADMIN_PAGE_SIZE = 20

const description = v.pipe(Text, v.maxLength(5_000, 'Use at most 5000 characters.'))

/** A valibot schema: the form that adds a product (price in the currency's units, stock in units). */
export const ProductForm = v.object({
  name: requiredText('Enter the product’s name.', 200),
  description: v.optional(description, ''),
  price: priceField,
  stock: wholeNumber('Enter the units in stock, a whole number from 0.', 0, INT_MAX),
})
/** A valibot schema: the form that edits a product's name, description and price. */
export const ProductEditForm = v.object({ name: ProductForm.entries.name, description: ProductForm.entries.description, price: priceField })
/** A valibot schema: the form that sets a product's stock to a number of units. */
export const StockForm = v.object({ stock: wholeNumber('Enter the units in stock, a whole number from 0.', 0, INT_MAX) })

// The API's field names, as the forms name them.
const productField = (path: string) => ({ name: 'name', description: 'description', price_cents: 'price', stock: 'stock', delta: 'stock' })[path]

/** The routes of the admin's pages. */
export function adminPages(app: Hono, { shop, sessions }: PageDeps) {
  app.use('/admin/*', adminOnly)
  app.use('/admin', adminOnly)
  app.get('/admin', (c) => c.redirect('/admin/products', 303))

  const listPage = async (c: Context, form?: { values: FormValues; errors: FieldErrors }) => {
    const q = c.req.query('q')?.trim() ?? ''
    const page = pageNumber(c.req.query('page'))
    const listed = await shop.products({ q: q || undefined, limit: ADMIN_PAGE_SIZE, offset: (page - 1) * ADMIN_PAGE_SIZE })
    const products = listed.ok ? listed.value.items : []
    const pages = listed.ok ? Math.max(1, Math.ceil(listed.value.total / ADMIN_PAGE_SIZE)) : 1
    return render(c, <ProductsPage ctx={await pageContext(c, sessions)} q={q} page={page} pages={pages} products={products} form={form} />, form ? 400 : 200)
  }
  const editPage = async (c: Context, product: Product, form?: { values: FormValues; errors: FieldErrors }) =>
    render(c, <EditPage ctx={await pageContext(c, sessions)} product={product} form={form} />, form ? 400 : 200)
  const productOf = async (c: Context) => {
    const id = v.safeParse(Uuid, c.req.param('id'))
    if (!id.success) return undefined
    const found = await shop.product(id.output)
    return found.ok ? found.value : undefined
  }
  const done = async (c: Context, kind: 'success' | 'error', text: string, to: string) => {
    await sessions.setFlash(userOf(c).session, { kind, text })
    return c.redirect(to, 303)
  }

  app.get('/admin/products', (c) => listPage(c))

  app.post('/admin/products', csrf, async (c) => {
    const form = await readForm(c, ProductForm)
    if (!form.ok) return listPage(c, form)
    const { name, description, price, stock } = form.data
    const made = await shop.createProduct(userOf(c).token, { name, description, price_cents: price, stock })
    if (!made.ok) return listPage(c, { values: form.values, errors: problemErrors(made.problem, productField) })
    return done(c, 'success', `Added “${made.value.name}” to the catalog.`, '/admin/products')
  })

  app.get('/admin/products/:id', async (c) => {
    const product = await productOf(c)
    return product ? editPage(c, product) : c.notFound()
  })

  app.post('/admin/products/:id', csrf, async (c) => {
    const product = await productOf(c)
    if (!product) return c.notFound()
    const form = await readForm(c, ProductEditForm)
    if (!form.ok) return editPage(c, product, form)
    const { name, description, price } = form.data
    const saved = await shop.updateProduct(userOf(c).token, product.id, { name, description, price_cents: price })
    if (!saved.ok) return editPage(c, product, { values: form.values, errors: problemErrors(saved.problem, productField) })
    return done(c, 'success', `Saved “${saved.value.name}”.`, '/admin/products')
  })

  // The form says what the stock should be; the API takes a change. The change is worked out from
  // the stock now, so sending the same form twice sets the same stock, not twice the change.
  app.post('/admin/products/:id/stock', csrf, async (c) => {
    const product = await productOf(c)
    if (!product) return c.notFound()
    const form = await readForm(c, StockForm)
    if (!form.ok) return editPage(c, product, form)
    const delta = form.data.stock - product.stock
    if (delta !== 0) {
      const changed = await shop.adjustStock(userOf(c).token, product.id, delta)
      if (!changed.ok) {
        const why = changed.problem.status === 409 ? 'Units were sold meanwhile; look at the stock now and try again.' : changed.problem.detail
        return editPage(c, { ...product }, { values: form.values, errors: { stock: why } })
      }
    }
    return done(c, 'success', `The stock of “${product.name}” is ${form.data.stock}.`, '/admin/products')
  })

  app.post('/admin/products/:id/delete', csrf, async (c) => {
    const product = await productOf(c)
    if (!product) return c.notFound()
    const deleted = await shop.deleteProduct(userOf(c).token, product.id)
    if (!deleted.ok) return done(c, 'error', `“${product.name}” could not be deleted: ${deleted.problem.detail}`, `/admin/products/${product.id}`)
    return done(c, 'success', `Deleted “${product.name}”.`, '/admin/products')
  })

  app.get('/admin/orders', async (c) => {
    const given = c.req.query('status') ?? ''
    const status = (ORDER_STATUSES as readonly string[]).includes(given) ? given : ''
    const page = pageNumber(c.req.query('page'))
    const listed = await shop.allOrders(userOf(c).token, { status: status || undefined, limit: ADMIN_PAGE_SIZE, offset: (page - 1) * ADMIN_PAGE_SIZE })
    if (!listed.ok) throw new Error(`the order listing answered ${listed.problem.status}: ${listed.problem.detail}`)
    const { items, total } = listed.value
    return render(c, <AllOrdersPage ctx={await pageContext(c, sessions)} orders={items} total={total} status={status} page={page} pages={Math.max(1, Math.ceil(total / ADMIN_PAGE_SIZE))} />)
  })
}

type ProductsProps = { ctx: PageContext; q: string; page: number; pages: number; products: Product[]; form?: { values: FormValues; errors: FieldErrors } | undefined }

function ProductsPage({ ctx, q, page, pages, products, form }: ProductsProps) {
  const focus = form ? firstInvalid(form.errors, ['name', 'description', 'price', 'stock']) : undefined
  return (
    <Layout {...ctx} title="Products">
      <h1>Products</h1>
      <form class="search" method="get" action="/admin/products" role="search">
        <label for="f-q">Search products</label>
        <input id="f-q" type="search" name="q" value={q} placeholder="Search products" />
        <button type="submit">Search</button>
      </form>
      {products.length === 0 ? (
        <p class="empty">{q ? 'No product matches your search.' : 'The catalog is empty.'}</p>
      ) : (
        <table class="stack">
          <caption class="sr">The catalog, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col" class="num">
                Price
              </th>
              <th scope="col">Stock</th>
              <th scope="col">
                <span class="sr">Edit</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr>
                <td data-label="Product">{p.name}</td>
                <td data-label="Price" class="num">
                  {formatCents(p.price_cents)}
                </td>
                <td data-label="Stock">
                  <form method="post" action={`/admin/products/${p.id}/stock`} class="admin-stock">
                    <Csrf session={ctx.session} />
                    <label class="sr" for={`s-${p.id}`}>{`Stock of ${p.name}`}</label>
                    <input id={`s-${p.id}`} type="number" name="stock" min={0} value={String(p.stock)} inputmode="numeric" />
                    <button type="submit" class="secondary" aria-label={`Set the stock of ${p.name}`}>
                      Set
                    </button>
                  </form>
                </td>
                <td>
                  <a href={`/admin/products/${p.id}`} aria-label={`Edit ${p.name}`}>
                    Edit
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager page={page} pages={pages} href={(p) => `/admin/products?${new URLSearchParams({ ...(q ? { q } : {}), page: String(p) })}`} label="Product pages" />

      <h2 id="add">Add a product</h2>
      <form method="post" action="/admin/products" class="form wide" novalidate aria-labelledby="add">
        <FormError errors={form?.errors} />
        <Csrf session={ctx.session} />
        <Field name="name" label="Name" values={form?.values} errors={form?.errors} required autofocus={focus === 'name'} />
        <Field name="description" label="Description" multiline values={form?.values} errors={form?.errors} autofocus={focus === 'description'} />
        <Field name="price" label="Price (€)" hint="Like 12.50" values={form?.values} errors={form?.errors} required autofocus={focus === 'price'} />
        <Field name="stock" label="Units in stock" type="number" min={0} values={form?.values} value={form ? undefined : '0'} errors={form?.errors} required autofocus={focus === 'stock'} />
        <button type="submit">Add product</button>
      </form>
    </Layout>
  )
}

type EditProps = { ctx: PageContext; product: Product; form?: { values: FormValues; errors: FieldErrors } | undefined }

function EditPage({ ctx, product: p, form }: EditProps) {
  const values: FormValues = form?.values ?? { name: p.name, description: p.description ?? '', price: (p.price_cents / 100).toFixed(2), stock: String(p.stock) }
  const errors = form?.errors
  const focus = errors ? firstInvalid(errors, ['name', 'description', 'price', 'stock']) : undefined
  return (
    <Layout {...ctx} title={`Edit ${p.name}`}>
      <p>
        <a href="/admin/products">← Products</a>
      </p>
      <h1>{`Edit “${p.name}”`}</h1>
      <form method="post" action={`/admin/products/${p.id}`} class="form wide" novalidate>
        <FormError errors={errors && !errors.stock ? errors : undefined} />
        <Csrf session={ctx.session} />
        <Field name="name" label="Name" values={values} errors={errors} required autofocus={focus === 'name'} />
        <Field name="description" label="Description" multiline values={values} errors={errors} autofocus={focus === 'description'} />
        <Field name="price" label="Price (€)" hint="Like 12.50" values={values} errors={errors} required autofocus={focus === 'price'} />
        <button type="submit">Save</button>
      </form>

      <h2>Stock</h2>
      <form method="post" action={`/admin/products/${p.id}/stock`} class="form wide">
        <Csrf session={ctx.session} />
        <Field name="stock" label="Units in stock" type="number" min={0} values={values} errors={errors} hint={`Now ${p.stock}: what can still be sold (the units of pending orders are taken out already).`} required autofocus={focus === 'stock'} />
        <button type="submit">Set stock</button>
      </form>

      <h2>Delete</h2>
      <form method="post" action={`/admin/products/${p.id}/delete`} class="form wide">
        <Csrf session={ctx.session} />
        <p>Deleting takes the product out of the catalog. Orders placed keep their lines.</p>
        <button type="submit" class="danger">{`Delete “${p.name}”`}</button>
      </form>
    </Layout>
  )
}

type AllOrdersProps = { ctx: PageContext; orders: Order[]; total: number; status: string; page: number; pages: number }

function AllOrdersPage({ ctx, orders, total, status, page, pages }: AllOrdersProps) {
  return (
    <Layout {...ctx} title="All orders">
      <h1>All orders</h1>
      <form class="filters" method="get" action="/admin/orders">
        <div class="field">
          <label for="f-status">Status</label>
          <select id="f-status" name="status">
            <option value="" selected={status === ''}>
              Every status
            </option>
            {ORDER_STATUSES.map((s) => (
              <option value={s} selected={status === s}>
                {STATUS_LABELS[s] ?? s}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Show</button>
      </form>
      <p class="hint">{`${total} ${total === 1 ? 'order' : 'orders'}${status ? ` ${(STATUS_LABELS[status] ?? status).toLowerCase()}` : ''}`}</p>
      {orders.length === 0 ? (
        <p class="empty">No orders here.</p>
      ) : (
        <table class="stack">
          <caption class="sr">Orders of every customer, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Placed</th>
              <th scope="col">Buyer</th>
              <th scope="col">Items</th>
              <th scope="col" class="num">
                Total
              </th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {orders.map((o) => (
              <tr>
                <td data-label="Order">{`#${shortId(o.id)}`}</td>
                <td data-label="Placed">{formatTime(o.created_at)}</td>
                <td data-label="Buyer">{o.user_email ?? o.user_id}</td>
                <td data-label="Items">{itemsSummary(o)}</td>
                <td data-label="Total" class="num">
                  {formatCents(o.total_cents)}
                </td>
                <td data-label="Status">
                  <StatusBadge status={o.status} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager page={page} pages={pages} href={(p) => `/admin/orders?${new URLSearchParams({ ...(status ? { status } : {}), page: String(p) })}`} label="Order pages" />
    </Layout>
  )
}
