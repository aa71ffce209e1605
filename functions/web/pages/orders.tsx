/**
 * A shopper's orders: `GET /orders` (the list, `?page=`), `GET /orders/:id` (one order, its status
 * kept up to date by the live-status script while it can still change), `GET /orders/:id/status`
 * (what that script asks, JSON) and `POST /orders/:id/cancel` (while it is pending).
 */
import type { Context, Hono } from 'hono'
import * as v from 'valibot'
import { problemResponse } from '../../../shared/errors.ts'
import { Uuid } from '../../../shared/validate.ts'
import type { PageDeps } from '../app.tsx'
import type { LiveStatus } from '../live-status.ts'
import type { Order } from '../shop.ts'
import { Csrf, Layout, Pager, Price, STATUS_LABELS, StatusBadge, formatCents, formatTime, paymentLabel, render, shortId, type PageContext } from '../views.tsx'
import { csrf, pageContext, pageNumber, signedIn, userOf } from './guards.tsx'

/** Orders on one page of the list. */
export const ORDERS_PAGE_SIZE = 10

/**
 * Where an order stands, as the page and its script show it. `final` once nothing more will
 * change: paid, failed, or cancelled or expired with no charge waiting for its refund.
 */
export function liveStatusOf(o: Pick<Order, 'status' | 'payment_status'>): LiveStatus {
  const pending = o.status === 'pending'
  const refundDue = (o.status === 'cancelled' || o.status === 'expired') && o.payment_status === 'succeeded'
  return { status: o.status, label: STATUS_LABELS[o.status] ?? o.status, payment: paymentLabel(o.status, o.payment_status), pending, final: !pending && !refundDue }
}

/** "2 × Espresso cup, 1 × Milk jug". */
export const itemsSummary = (o: Order) => o.items.map((i) => `${i.quantity} × ${i.name}`).join(', ')

/** The routes of a shopper's orders. */
export function orderPages(app: Hono, { shop, sessions }: PageDeps) {
  const orderId = (c: Context) => v.safeParse(Uuid, c.req.param('id'))

  app.get('/orders', signedIn, async (c) => {
    const page = pageNumber(c.req.query('page'))
    const listed = await shop.orders(userOf(c).token, { limit: ORDERS_PAGE_SIZE, offset: (page - 1) * ORDERS_PAGE_SIZE })
    if (!listed.ok) throw new Error(`the order list answered ${listed.problem.status}: ${listed.problem.detail}`)
    const { items, total } = listed.value
    return render(c, <OrdersPage ctx={await pageContext(c, sessions)} orders={items} page={page} pages={Math.max(1, Math.ceil(total / ORDERS_PAGE_SIZE))} />)
  })

  app.get('/orders/:id', signedIn, async (c) => {
    const id = orderId(c)
    if (!id.success) return c.notFound()
    const found = await shop.order(userOf(c).token, id.output)
    if (!found.ok) return c.notFound()
    return render(c, <OrderPage ctx={await pageContext(c, sessions)} order={found.value} />)
  })

  app.get('/orders/:id/status', async (c) => {
    c.header('Cache-Control', 'no-store')
    const token = c.get('session')?.accessToken
    if (!token) return problemResponse(c, 401, 'log in to see this order')
    const id = orderId(c)
    const found = id.success ? await shop.order(token, id.output) : undefined
    if (!found?.ok) return problemResponse(c, 404, 'order not found')
    return c.json(liveStatusOf(found.value))
  })

  app.post('/orders/:id/cancel', csrf, signedIn, async (c) => {
    const id = orderId(c)
    if (!id.success) return c.notFound()
    const { token, session } = userOf(c)
    const cancelled = await shop.cancelOrder(token, id.output)
    if (!cancelled.ok && cancelled.problem.status === 404) return c.notFound()
    await sessions.setFlash(
      session,
      cancelled.ok
        ? { kind: 'success', text: 'Your order is cancelled. Nothing is charged, or the charge is refunded.' }
        : { kind: 'error', text: 'This order can no longer be cancelled: it is not awaiting payment any more.' },
    )
    return c.redirect(`/orders/${id.output}`, 303)
  })
}

type OrdersProps = { ctx: PageContext; orders: Order[]; page: number; pages: number }

function OrdersPage({ ctx, orders, page, pages }: OrdersProps) {
  return (
    <Layout {...ctx} title="My orders">
      <h1>My orders</h1>
      {orders.length === 0 ? (
        <div class="empty">
          <p>{page > 1 ? 'There are no orders on this page.' : 'You have not ordered anything yet.'}</p>
          <a class="button" href="/">
            Browse the catalog
          </a>
        </div>
      ) : (
        <table class="stack">
          <caption class="sr">Your orders, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Placed</th>
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
                <td data-label="Order">
                  <a href={`/orders/${o.id}`}>{`#${shortId(o.id)}`}</a>
                </td>
                <td data-label="Placed">{formatTime(o.created_at)}</td>
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
      <Pager page={page} pages={pages} href={(p) => (p > 1 ? `/orders?page=${p}` : '/orders')} label="Order pages" />
    </Layout>
  )
}

function OrderPage({ ctx, order: o }: { ctx: PageContext; order: Order }) {
  const live = liveStatusOf(o)
  return (
    <Layout {...ctx} title={`Order #${shortId(o.id)}`} liveStatus={!live.final}>
      <p>
        <a href="/orders">← My orders</a>
      </p>
      <h1>{`Order #${shortId(o.id)}`}</h1>
      <p role="status" class="status-line">
        {'Status: '}
        <strong class={`status status-${o.status}`} data-status={o.status} data-status-url={`/orders/${o.id}/status`}>
          {live.label}
        </strong>
      </p>
      <dl class="summary">
        <dt>Placed</dt>
        <dd>{formatTime(o.created_at)}</dd>
        <dt>Payment</dt>
        <dd data-payment-status>{live.payment}</dd>
        <dt>Total</dt>
        <dd>{formatCents(o.total_cents)}</dd>
        <dt>Order number</dt>
        <dd>{o.id}</dd>
      </dl>
      <table class="stack">
        <caption class="sr">What you ordered</caption>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col" class="num">
              Price
            </th>
            <th scope="col" class="num">
              Quantity
            </th>
            <th scope="col" class="num">
              Total
            </th>
          </tr>
        </thead>
        <tbody>
          {o.items.map((i) => (
            <tr>
              <td data-label="Product">
                <a href={`/products/${i.product_id}`}>{i.name}</a>
              </td>
              <td data-label="Price" class="num">
                {formatCents(i.unit_price_cents)}
              </td>
              <td data-label="Quantity" class="num">
                {String(i.quantity)}
              </td>
              <td data-label="Total" class="num">
                {formatCents(i.unit_price_cents * i.quantity)}
              </td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <td colspan={3}>Total</td>
            <td class="num">
              <Price cents={o.total_cents} />
            </td>
          </tr>
        </tfoot>
      </table>
      {live.pending ? (
        <form method="post" action={`/orders/${o.id}/cancel`} class="checkout" data-while-pending>
          <Csrf session={ctx.session} />
          <button type="submit" class="danger">
            Cancel order
          </button>
        </form>
      ) : null}
    </Layout>
  )
}
