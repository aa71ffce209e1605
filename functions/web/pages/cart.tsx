/**
 * The cart and the checkout: `GET /cart`, `POST /cart/items` (add), `POST /cart/items/:id`
 * (change the quantity, or `action=remove`), `POST /checkout`. Names, prices, line totals and the
 * total come from the cart API, which prices every line from the catalog now.
 *
 * Checking out is one form: it carries the lines the shopper saw and an Idempotency-Key made for
 * that form, so a second click, or the same form sent again from the browser's history, places
 * the order once (the order API answers the first order again for the same key and lines).
 */
import { randomUUID } from 'node:crypto'
import type { Context, Hono } from 'hono'
import * as v from 'valibot'
import { Uuid } from '../../../shared/validate.ts'
import type { PageDeps } from '../app.tsx'
import { problemErrors, readForm, wholeNumber, type FieldErrors } from '../forms.ts'
import type { Cart, CartLine, Shop } from '../shop.ts'
import { Csrf, FormError, Layout, Price, formatCents, render, type PageContext } from '../views.tsx'
import { ProductPage } from './catalog.tsx'
import { csrf, pageContext, signedIn, userOf } from './guards.tsx'

/** A valibot schema: the add-to-cart form of a product page. */
export const AddForm = v.object({
  product_id: v.pipe(v.string(), Uuid),
  quantity: wholeNumber('Enter a quantity from 1 to 999.', 1, 999),
})

/** A valibot schema: a cart line's form: `action=remove`, or a new `quantity` (0 removes the line too). */
export const LineForm = v.variant('action', [
  v.object({ action: v.literal('remove') }),
  v.object({ action: v.literal('update'), quantity: wholeNumber('Enter a quantity from 0 to 999.', 0, 999) }),
])

/** A valibot schema for a field that may be given once or repeated: always a list of `item`. */
const many = <S extends v.GenericSchema<string, unknown>>(item: S) =>
  v.pipe(
    v.union([v.string(), v.array(v.string())]),
    v.transform((x) => (Array.isArray(x) ? x : [x])),
    v.array(item),
  )

/** A valibot schema: the checkout form: the lines (`product_id` and `quantity`, repeated in order), the total the page showed (`total_cents`) and its Idempotency-Key. */
export const CheckoutForm = v.pipe(
  v.object({
    product_id: v.pipe(many(Uuid), v.minLength(1), v.maxLength(50)),
    quantity: many(wholeNumber('must be 1 to 999', 1, 999)),
    total_cents: wholeNumber('must be a whole number of cents', 0, Number.MAX_SAFE_INTEGER),
    idempotency_key: v.pipe(v.string(), v.regex(/^[\x21-\x7e]{1,255}$/)),
  }),
  v.check((f) => f.product_id.length === f.quantity.length, 'every line needs a quantity'),
)

/** What each line of the cart page says beyond the cart API's view: an error of its form, or what the checkout found. */
type LineNotes = Record<string, { error?: string; short?: string }>

/** The routes of the cart and the checkout. */
export function cartPages(app: Hono, { shop, sessions }: PageDeps) {
  const cartPage = async (c: Context, status: 200 | 400 | 409 | 422 = 200, notes: LineNotes = {}, errors?: FieldErrors) => {
    const { token } = userOf(c)
    const cart = await shop.cart(token)
    if (!cart.ok) throw new Error(`the cart answered ${cart.problem.status}: ${cart.problem.detail}`)
    return render(c, <CartPage ctx={await pageContext(c, sessions)} cart={cart.value} notes={notes} errors={errors} />, status)
  }
  // Checkouts under way, by user and Idempotency-Key. A double click sends the form twice at once:
  // the second waits here for the first's answer instead of placing the same order again. That
  // saves a call, not an order: the order API's idempotency makes it one order anyway, whichever
  // instance each request reaches.
  const placing = new Map<string, ReturnType<Shop['placeOrder']>>()
  const placeOnce = (token: string, userId: string, items: { product_id: string; quantity: number }[], key: string) => {
    const id = `${userId} ${key}`
    let call = placing.get(id)
    if (!call) {
      call = shop.placeOrder(token, items, key).finally(() => placing.delete(id))
      placing.set(id, call)
    }
    return call
  }
  const done = async (c: Context, text: string, to = '/cart') => {
    await sessions.setFlash(userOf(c).session, { kind: 'success', text })
    return c.redirect(to, 303)
  }

  app.get('/cart', signedIn, (c) => cartPage(c))

  app.post('/cart/items', csrf, signedIn, async (c) => {
    const { token } = userOf(c)
    const form = await readForm(c, AddForm)
    const productId = v.safeParse(Uuid, form.values.product_id)
    if (!productId.success) return c.notFound()
    const found = await shop.product(productId.output)
    if (!found.ok) return c.notFound()
    const product = found.value
    const again = async (errors: FieldErrors, status: 400 | 409) =>
      render(c, <ProductPage ctx={await pageContext(c, sessions)} product={product} errors={errors} quantity={typeof form.values.quantity === 'string' ? form.values.quantity : undefined} />, status)
    if (!form.ok) return again(form.errors, 400)
    if (form.data.quantity > product.stock) {
      return again({ quantity: product.stock > 0 ? `Only ${product.stock} left: choose ${product.stock} or fewer.` : 'This product is sold out.' }, 409)
    }
    const added = await shop.addToCart(token, product.id, form.data.quantity)
    if (!added.ok) return again(problemErrors(added.problem, (path) => (path === 'quantity' ? 'quantity' : undefined)), added.problem.status === 409 ? 409 : 400)
    return done(c, `Added ${form.data.quantity} × ${product.name} to your cart.`)
  })

  app.post('/cart/items/:id', csrf, signedIn, async (c) => {
    const { token } = userOf(c)
    const id = v.safeParse(Uuid, c.req.param('id'))
    if (!id.success) return c.notFound()
    const form = await readForm(c, LineForm)
    if (!form.ok) return cartPage(c, 400, { [id.output]: { error: Object.values(form.errors)[0] ?? 'Enter a quantity from 0 to 999.' } })
    const quantity = form.data.action === 'update' ? form.data.quantity : 0
    const remove = quantity === 0
    const changed = remove ? await shop.removeCartLine(token, id.output) : await shop.setCartLine(token, id.output, quantity)
    if (!changed.ok) {
      // The line is gone already (removed in another tab): the cart shows what is there now.
      if (changed.problem.status === 404) return c.redirect('/cart', 303)
      return cartPage(c, 400, { [id.output]: { error: Object.values(problemErrors(changed.problem, () => 'quantity'))[0] } })
    }
    return done(c, remove ? 'Removed the line from your cart.' : 'Updated the quantity.')
  })

  app.post('/checkout', csrf, signedIn, async (c) => {
    const { token, user } = userOf(c)
    const form = await readForm(c, CheckoutForm)
    if (!form.ok) return cartPage(c, 400, {}, { '': 'Your cart changed while you were checking out. Check it and place the order again.' })
    const { product_id, quantity, total_cents: shown, idempotency_key } = form.data
    const items = product_id.map((id, i) => ({ product_id: id, quantity: quantity[i]! }))
    const placed = await placeOnce(token, user.id, items, idempotency_key)
    if (placed.ok && placed.value.total_cents !== shown) {
      // The catalog's prices changed after the page showed its total: the shopper agreed to that
      // total, not this one. The order is cancelled at once (its units and lines come back) and the
      // cart shown again with the prices as they are now. Sent again, the form finds the same order
      // (its key) and says the same.
      if (placed.value.status === 'pending') await shop.cancelOrder(token, placed.value.id)
      return cartPage(c, 409, {}, {
        '': `The prices changed since the cart was shown: the order came to ${formatCents(placed.value.total_cents)}, not ${formatCents(shown)}. Nothing was ordered: check the new total and place the order again.`,
      })
    }
    if (placed.ok) return done(c, 'Thank you! Your order is placed; the payment is on its way.', `/orders/${placed.value.id}`)
    const { problem } = placed
    const notes: LineNotes = {}
    for (const u of problem.unavailable) notes[u.product_id] = { short: u.available > 0 ? `Only ${u.available} left: lower the quantity.` : 'Sold out: remove it to check out.' }
    for (const e of problem.errors) {
      const at = /^items\.(\d+)\./.exec(e.path)?.[1]
      const line = at === undefined ? undefined : product_id[Number(at)]
      if (line) notes[line] = { short: 'No longer sold: remove it to check out.' }
    }
    const message = problem.unavailable.length
      ? 'Some products are not in stock in the quantity you asked for. Nothing was ordered: change the marked lines and try again.'
      : Object.keys(notes).length
        ? 'Some products are no longer sold. Nothing was ordered: remove the marked lines and try again.'
        : `The order could not be placed: ${problem.detail}`
    return cartPage(c, problem.status === 409 ? 409 : 422, notes, { '': message })
  })

  // Someone who reloads a page a form answered, or types the address: a GET changes nothing.
  app.get('/checkout', (c) => c.redirect('/cart', 303))
  app.get('/cart/items', (c) => c.redirect('/cart', 303))
}

/** What a line says about its product: gone, sold out, short, or what the checkout found. */
function lineNote(line: CartLine, note: { error?: string; short?: string } | undefined) {
  if (note?.short) return { text: note.short, bad: true }
  if (line.name === null) return { text: 'No longer sold: remove it to check out.', bad: true }
  if (line.stock <= 0) return { text: 'Sold out: remove it to check out.', bad: true }
  if (line.stock < line.quantity) return { text: `Only ${line.stock} left: lower the quantity.`, bad: true }
  if (line.stock <= 5) return { text: `${line.stock} left`, bad: false }
  return undefined
}

type CartProps = { ctx: PageContext; cart: Cart; notes: LineNotes; errors?: FieldErrors | undefined }

function CartPage({ ctx, cart, notes, errors }: CartProps) {
  const blocked = cart.lines.some((l) => !l.purchasable)
  return (
    <Layout {...ctx} title="Your cart">
      <h1>Your cart</h1>
      <FormError errors={errors} />
      {cart.lines.length === 0 ? (
        <div class="empty">
          <p>Your cart is empty.</p>
          <a class="button" href="/">
            Browse the catalog
          </a>
        </div>
      ) : (
        <>
          <table class="stack">
            <caption class="sr">Products in your cart, with their prices</caption>
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col" class="num">
                  Price
                </th>
                <th scope="col">Quantity</th>
                <th scope="col" class="num">
                  Total
                </th>
                <th scope="col">
                  <span class="sr">Remove</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {cart.lines.map((line) => {
                const name = line.name ?? 'A product no longer sold'
                const note = lineNote(line, notes[line.product_id])
                const error = notes[line.product_id]?.error
                const qid = `q-${line.product_id}`
                return (
                  <tr>
                    <td data-label="Product">
                      {line.name === null ? <span>{name}</span> : <a href={`/products/${line.product_id}`}>{name}</a>}
                      {note ? <span class={`note ${note.bad ? 'note-bad' : 'note-warn'}`}>{note.text}</span> : null}
                    </td>
                    <td data-label="Price" class="num">
                      {line.unit_price_cents === null ? '–' : formatCents(line.unit_price_cents)}
                    </td>
                    <td data-label="Quantity">
                      <form method="post" action={`/cart/items/${line.product_id}`} class="qty">
                        <Csrf session={ctx.session} />
                        <label for={qid}>{`Quantity of ${name}`}</label>
                        <input id={qid} type="number" name="quantity" min={0} max={999} value={String(line.quantity)} inputmode="numeric" aria-invalid={error ? 'true' : undefined} aria-describedby={error ? `${qid}-error` : undefined} autofocus={error ? true : undefined} />
                        <input type="hidden" name="action" value="update" />
                        <button type="submit" class="secondary">
                          Update
                        </button>
                      </form>
                      {error ? (
                        <p class="error" id={`${qid}-error`}>
                          {error}
                        </p>
                      ) : null}
                    </td>
                    <td data-label="Total" class="num">
                      {line.line_total_cents === null ? '–' : formatCents(line.line_total_cents)}
                    </td>
                    <td>
                      <form method="post" action={`/cart/items/${line.product_id}`} class="inline">
                        <Csrf session={ctx.session} />
                        <input type="hidden" name="action" value="remove" />
                        <button type="submit" class="danger" aria-label={`Remove ${name}`}>
                          Remove
                        </button>
                      </form>
                    </td>
                  </tr>
                )
              })}
            </tbody>
            <tfoot>
              <tr>
                <td colspan={3}>Total</td>
                <td class="num">
                  <Price cents={cart.total_cents} />
                </td>
                <td></td>
              </tr>
            </tfoot>
          </table>
          <form method="post" action="/checkout" class="checkout">
            <Csrf session={ctx.session} />
            <input type="hidden" name="idempotency_key" value={randomUUID()} />
            <input type="hidden" name="total_cents" value={String(cart.total_cents)} />
            {cart.lines.map((line) => (
              <>
                <input type="hidden" name="product_id" value={line.product_id} />
                <input type="hidden" name="quantity" value={String(line.quantity)} />
              </>
            ))}
            {blocked ? <p class="note note-bad" id="checkout-blocked">Change or remove the marked lines to check out.</p> : null}
            <button type="submit" class="big" disabled={blocked} aria-describedby={blocked ? 'checkout-blocked' : undefined}>
              {`Place order · ${formatCents(cart.total_cents)}`}
            </button>
          </form>
        </>
      )}
    </Layout>
  )
}
