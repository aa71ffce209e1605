/**
 * Stock reserved for orders. The order function reserves every line of an order in one call
 * (all or nothing); order.created confirms the hold; order.cancelled and a failed payment release
 * it; a hold nothing confirms expires. Units come back exactly once: every release is a guarded
 * UPDATE of the reservation's status in the same transaction as the stock it gives back.
 *
 * Locks are always taken in one order, so these transactions cannot deadlock one another: first
 * the reservation row(s), then the products, sorted by id.
 */
import { Counter } from 'prom-client'
import { withTransaction, type Pool, type PoolClient } from '../../shared/db.ts'
import {
  outOfStock,
  reservationMismatch,
  reservationReleased,
  unknownProduct,
  unprocessable,
  type Unavailable,
} from '../../shared/errors.ts'
import type { EventOutcome } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'

/** Why units came back. Only `hold_expired` lets a late order.created take them again. */
export type ReleaseReason = 'hold_expired' | 'order_cancelled' | 'order_expired' | 'payment_failed'

/** What `POST /internal/reservations` takes: the order's id (the reservation's key), its user, and each product's quantity, one line per product. */
export type ReserveRequest = { order_id: string; user_id: string; items: { product_id: string; quantity: number }[] }

/** What a reserve answers: the lines priced as they were when the units were taken. */
export type ReservationBody = {
  order_id: string
  status: 'held' | 'confirmed'
  expires_at: Date
  items: { product_id: string; name: string; quantity: number; unit_price_cents: number }[]
}

type Stored = {
  order_id: string
  user_id: string
  status: 'held' | 'confirmed' | 'released'
  release_reason: ReleaseReason | null
  expires_at: Date
  items: ReservationBody['items']
}

const STORED = `SELECT r.order_id, r.user_id, r.status, r.release_reason, r.expires_at,
  coalesce(json_agg(json_build_object('product_id', l.product_id, 'name', l.name, 'quantity', l.quantity,
                                      'unit_price_cents', l.unit_price_cents) ORDER BY l.product_id)
           FILTER (WHERE l.order_id IS NOT NULL), '[]') AS items
  FROM product.reservations r LEFT JOIN product.reservation_lines l ON l.order_id = r.order_id
  WHERE r.order_id = $1 GROUP BY r.order_id`

const INT_MAX = 2_147_483_647

type ReservationsDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  /** How long, in seconds, a hold waits for order.created before its units come back. */
  ttlSeconds: number
  /** At most one opportunistic expiry sweep per this many milliseconds per process; 0: none. */
  sweepIntervalMs?: number
}

/** The reservation operations `createReservations` makes: reserve, confirm, release, expire. */
export type Reservations = ReturnType<typeof createReservations>

/**
 * The reservation operations on `pool`: `reserve`, `confirm`, `release`, `expire`. Counts outcomes
 * in `stock_reservations_total{outcome, reason}` on the app's registry.
 */
export function createReservations({ pool, log, metrics, ttlSeconds, sweepIntervalMs = 10_000 }: ReservationsDeps) {
  const counted = new Counter({
    name: 'stock_reservations_total',
    help: 'Reservation outcomes: held, out_of_stock, confirmed, released (by reason), tombstone, retaken, lost.',
    labelNames: ['outcome', 'reason'] as const,
    registers: [metrics.registry],
  })
  const count = (outcome: string, reason = '', n = 1) => counted.inc({ outcome, reason }, n)

  /** Locks the products of these orders' lines in id order, then gives their units back. */
  const giveBack = async (tx: PoolClient, orderIds: string[]) => {
    await tx.query(
      `SELECT 1 FROM product.products
       WHERE id IN (SELECT product_id FROM product.reservation_lines WHERE order_id = ANY($1::uuid[]))
       ORDER BY id FOR UPDATE`,
      [orderIds],
    )
    // LEAST: an admin may have raised the stock to the integer limit meanwhile; a release must
    // not fail for it (the broker would retry it forever).
    await tx.query(
      `UPDATE product.products p SET stock = least(p.stock::bigint + l.quantity, ${INT_MAX})::int, updated_at = now()
       FROM (SELECT product_id, sum(quantity) AS quantity FROM product.reservation_lines
             WHERE order_id = ANY($1::uuid[]) GROUP BY product_id) l
       WHERE p.id = l.product_id`,
      [orderIds],
    )
  }

  /** Locks the products of `lines` in id order and says which are missing and which are short. */
  const lockAndCheck = async (tx: PoolClient, lines: { product_id: string; quantity: number }[]) => {
    const { rows } = await tx.query<{ id: string; stock: number }>(
      'SELECT id, stock FROM product.products WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE',
      [lines.map((l) => l.product_id)],
    )
    const stock = new Map(rows.map((r) => [r.id, r.stock]))
    const missing = lines.flatMap((l, i) => (stock.has(l.product_id) ? [] : [{ path: `items.${i}.product_id`, message: `no product ${l.product_id}` }]))
    const short: Unavailable[] = lines.flatMap((l) => {
      const available = stock.get(l.product_id)
      return available !== undefined && available < l.quantity ? [{ product_id: l.product_id, requested: l.quantity, available }] : []
    })
    return { missing, short }
  }

  const takeUnits = (tx: PoolClient, orderId: string, lines: { product_id: string; quantity: number }[]) =>
    tx.query(
      `WITH taken AS (
         UPDATE product.products p SET stock = p.stock - l.quantity, updated_at = now()
         FROM unnest($2::uuid[], $3::int[]) AS l (product_id, quantity)
         WHERE p.id = l.product_id
         RETURNING p.id, p.name, p.price_cents, l.quantity)
       INSERT INTO product.reservation_lines (order_id, product_id, name, quantity, unit_price_cents)
       SELECT $1, id, name, quantity, price_cents FROM taken`,
      [orderId, lines.map((l) => l.product_id), lines.map((l) => l.quantity)],
    )

  let lastSweep = 0
  /** Starts an expiry sweep in the background when none ran lately; never delays the caller. */
  const sweepSoon = () => {
    if (!sweepIntervalMs || Date.now() - lastSweep < sweepIntervalMs) return
    lastSweep = Date.now()
    expire({ maxMs: 2_000 }).catch((err: unknown) => log.warn('reservation expiry sweep failed', { err }))
  }

  /**
   * Releases holds past `expires_at`, in batches, for at most `maxMs`. Resolves to how many it
   * released. Safe to run in several processes at once: each batch skips rows another holds.
   */
  async function expire({ batchSize = 100, maxMs = 20_000 }: { batchSize?: number; maxMs?: number } = {}) {
    const deadline = Date.now() + maxMs
    let released = 0
    for (;;) {
      const ids = await withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ order_id: string }>(
          `UPDATE product.reservations
             SET status = 'released', release_reason = 'hold_expired', released_at = now(), updated_at = now()
           WHERE status = 'held' AND order_id IN (
             SELECT order_id FROM product.reservations WHERE status = 'held' AND expires_at <= now()
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING order_id`,
          [batchSize],
        )
        const orderIds = rows.map((r) => r.order_id)
        if (orderIds.length) await giveBack(tx, orderIds)
        return orderIds
      })
      released += ids.length
      if (ids.length) {
        count('released', 'hold_expired', ids.length)
        log.info('reservations expired', { count: ids.length })
      }
      if (ids.length < batchSize || Date.now() >= deadline) return { released }
    }
  }

  return {
    /**
     * Takes every line's units for `order_id`, all or nothing. Resolves `{ created: true }` when
     * it took them now, `{ created: false }` when this order's reservation existed already (the
     * same body again: nothing more is taken). Throws out-of-stock (409), unknown-product (422),
     * reservation-released (409: its units came back, or a release came before the reserve) or
     * reservation-mismatch (422: the order id was reserved with other lines or for another user).
     */
    async reserve({ order_id, user_id, items }: ReserveRequest): Promise<{ created: boolean; reservation: ReservationBody }> {
      sweepSoon()
      const lines = [...items].sort((a, b) => (a.product_id < b.product_id ? -1 : 1))
      return withTransaction(pool, async (tx) => {
        // The reservation row first: a retry of the same order waits here for the first attempt,
        // and it takes its lock before any product lock, like every other path.
        const { rows: fresh } = await tx.query<{ expires_at: Date }>(
          `INSERT INTO product.reservations (order_id, user_id, status, expires_at)
           VALUES ($1, $2, 'held', now() + make_interval(secs => $3))
           ON CONFLICT (order_id) DO NOTHING RETURNING expires_at`,
          [order_id, user_id, ttlSeconds],
        )
        if (!fresh[0]) return { created: false, reservation: existing((await tx.query<Stored>(STORED, [order_id])).rows[0]!, user_id, lines) }

        const { missing, short } = await lockAndCheck(tx, items)
        // Throwing rolls back the reservation row too: nothing is taken, nothing is recorded.
        if (missing.length) {
          count('unknown_product')
          throw unknownProduct(missing)
        }
        if (short.length) {
          count('out_of_stock')
          throw outOfStock(short.sort((a, b) => (a.product_id < b.product_id ? -1 : 1)))
        }
        // Locked and checked above; the CHECK (stock >= 0) would refuse it anyway.
        await takeUnits(tx, order_id, lines)
        const { rows } = await tx.query<Stored>(STORED, [order_id])
        count('held')
        return { created: true, reservation: body(rows[0]!) }
      })
    },

    /**
     * order.created: held → confirmed, so the expiry no longer applies. A hold that expired
     * before the event came takes its units again if they are all still there (the order exists
     * after all); if not, it is logged and counted as `lost`. Throws 422 for an order product
     * never reserved, or one reserved for another user.
     */
    async confirm(orderId: string, userId: string): Promise<EventOutcome> {
      const { rowCount } = await pool.query(
        `UPDATE product.reservations SET status = 'confirmed', confirmed_at = now(), updated_at = now()
         WHERE order_id = $1 AND user_id = $2 AND status = 'held'`,
        [orderId, userId],
      )
      if (rowCount) {
        count('confirmed')
        return 'handled'
      }
      return withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<Stored>('SELECT user_id, status, release_reason FROM product.reservations WHERE order_id = $1 FOR UPDATE', [orderId])
        const found = rows[0]
        if (!found) throw unprocessable(`there is no reservation for order ${orderId}`)
        if (found.user_id !== userId) throw unprocessable(`the reservation for order ${orderId} belongs to another user`)
        // Confirmed already, or released for good (cancelled, payment failed) before this came.
        if (found.status !== 'released' || found.release_reason !== 'hold_expired') return 'duplicate'

        const { rows: lines } = await tx.query<{ product_id: string; quantity: number }>(
          'SELECT product_id, quantity FROM product.reservation_lines WHERE order_id = $1 ORDER BY product_id',
          [orderId],
        )
        const { missing, short } = await lockAndCheck(tx, lines)
        if (missing.length || short.length) {
          count('lost')
          log.error('order confirmed after its hold expired, and its units are gone: the order is not covered by stock', {
            order_id: orderId,
            short,
            missing: missing.map((m) => m.message),
          })
          return 'handled'
        }
        await tx.query(
          `UPDATE product.products p SET stock = p.stock - l.quantity, updated_at = now()
           FROM product.reservation_lines l WHERE l.order_id = $1 AND p.id = l.product_id`,
          [orderId],
        )
        await tx.query(
          `UPDATE product.reservations SET status = 'confirmed', release_reason = NULL, released_at = NULL,
             confirmed_at = now(), updated_at = now() WHERE order_id = $1`,
          [orderId],
        )
        count('retaken')
        log.warn('order confirmed after its hold expired; its units were taken again', { order_id: orderId })
        return 'handled'
      })
    },

    /**
     * Gives the order's units back once, whether it was held or confirmed. For an order product
     * never reserved it records a released tombstone, so a reserve arriving later takes nothing.
     * Throws 422 when the order is reserved for another user.
     */
    release(orderId: string, userId: string, reason: Exclude<ReleaseReason, 'hold_expired'>): Promise<EventOutcome> {
      return withTransaction(pool, async (tx) => {
        const guarded = () =>
          tx.query(
            `UPDATE product.reservations SET status = 'released', release_reason = $3, released_at = now(), updated_at = now()
             WHERE order_id = $1 AND user_id = $2 AND status IN ('held', 'confirmed')`,
            [orderId, userId, reason],
          )
        const giveBackNow = async () => {
          await giveBack(tx, [orderId])
          count('released', reason)
          return 'handled' as const
        }
        if ((await guarded()).rowCount) return giveBackNow()

        const tombstone = await tx.query(
          `INSERT INTO product.reservations (order_id, user_id, status, release_reason, released_at, expires_at)
           VALUES ($1, $2, 'released', $3, now(), now()) ON CONFLICT (order_id) DO NOTHING`,
          [orderId, userId, reason],
        )
        if (tombstone.rowCount) {
          count('tombstone', reason)
          log.info('release for an order not reserved (yet): recorded, so a later reserve takes nothing', { order_id: orderId, reason })
          return 'handled'
        }
        // The insert waited for a reserve of this order that was committing: its row is visible
        // to this new statement, so the guarded update now finds the hold.
        if ((await guarded()).rowCount) return giveBackNow()

        const { rows } = await tx.query<Stored>('SELECT user_id, status, release_reason FROM product.reservations WHERE order_id = $1 FOR UPDATE', [orderId])
        const found = rows[0]!
        if (found.user_id !== userId) throw unprocessable(`the reservation for order ${orderId} belongs to another user`)
        // Released by its expiry already: the units are back. Record that the order is over, so
        // a late order.created does not take them again.
        if (found.release_reason === 'hold_expired') {
          await tx.query('UPDATE product.reservations SET release_reason = $2, updated_at = now() WHERE order_id = $1', [orderId, reason])
        }
        return 'duplicate'
      })
    },

    expire,
  }
}

const body = ({ order_id, status, expires_at, items }: Stored): ReservationBody => {
  if (status === 'released') throw new Error(`reservation ${order_id} is released`)
  return { order_id, status, expires_at, items }
}

/** The answer to a reserve for an order reserved before: the same body, or why not. */
function existing(found: Stored, userId: string, lines: { product_id: string; quantity: number }[]): ReservationBody {
  if (found.status === 'released') {
    const why = found.items.length ? 'its units came back' : 'it was cancelled before it was reserved'
    throw reservationReleased(`the reservation for order ${found.order_id} is released (${found.release_reason}): ${why}; it takes nothing again`)
  }
  const same =
    found.user_id === userId &&
    found.items.length === lines.length &&
    found.items.every((item, i) => item.product_id === lines[i]!.product_id && item.quantity === lines[i]!.quantity)
  if (!same) throw reservationMismatch(`order ${found.order_id} is already reserved with other lines or for another user`)
  return body(found)
}
