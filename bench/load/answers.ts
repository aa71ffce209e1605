/**
 * @module
 * The parts of the shop's answers the load generator reads, as valibot schemas. Loose objects:
 * the shop may add fields; what is named here must be there.
 */
import * as v from 'valibot'

const Id = v.pipe(v.string(), v.uuid())

export const Login = v.looseObject({ token: v.pipe(v.string(), v.nonEmpty()) })

export const Product = v.looseObject({ id: Id, name: v.string(), stock: v.number() })
export type Product = v.InferOutput<typeof Product>

export const ProductPage = v.looseObject({ items: v.array(Product), total: v.number() })

export const Line = v.looseObject({ product_id: Id, quantity: v.number() })
export const Cart = v.looseObject({ items: v.array(Line) })
export type Cart = v.InferOutput<typeof Cart>

/** An order's status: pending until paid or failed, or cancelled by its user, or expired by the sweep. */
export const OrderStatus = v.picklist(['pending', 'paid', 'payment_failed', 'cancelled', 'expired'])
export type OrderStatus = v.InferOutput<typeof OrderStatus>
export const FINAL_STATUSES: readonly OrderStatus[] = ['paid', 'payment_failed', 'cancelled', 'expired']

/** An order with its lines (what its units are, for the stock after the run). */
export const Order = v.looseObject({ id: Id, status: OrderStatus, payment_id: v.nullish(Id), items: v.array(Line) })
export type Order = v.InferOutput<typeof Order>
export const OrderPage = v.looseObject({ items: v.array(Order), total: v.number() })

/** A payment's status: `cancelled` never charged (its order was cancelled first), `refunded` charged and given back. */
export const PaymentStatus = v.picklist(['pending', 'succeeded', 'failed', 'cancelled', 'refunded'])
export const Payment = v.looseObject({ id: Id, order_id: Id, status: PaymentStatus })
export type Payment = v.InferOutput<typeof Payment>
export const PaymentPage = v.looseObject({ items: v.array(Payment), total: v.number() })
