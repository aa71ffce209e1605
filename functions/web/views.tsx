/**
 * @module
 * The page shell and the small parts every page is made of, in Hono's JSX: rendered on the
 * server, every text escaped by JSX (a product named `<script>` shows as text). Forms carry the
 * session's CSRF token in `_csrf`; fields carry their label, and their error beside them.
 */
import type { Context } from 'hono'
import { raw } from 'hono/html'
import type { Child, PropsWithChildren } from 'hono/jsx'
import { assets } from './assets.ts'
import type { FieldErrors, FormValues } from './forms.ts'
import type { Flash, Session } from './session.ts'

const money = new Intl.NumberFormat('en-IE', { style: 'currency', currency: 'EUR' })
/** Formats whole cents as money: `1250` → `€12.50`. */
export const formatCents = (cents: number) => money.format(cents / 100)

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' })
/** Formats an ISO 8601 time for people, in UTC: `3 Mar 2026, 14:05 UTC`. */
export const formatTime = (iso: string) => `${dateTime.format(new Date(iso))} UTC`

/** The words for each order status, as the pages and the live status show them. */
export const STATUS_LABELS: Record<string, string> = {
  pending: 'Awaiting payment',
  paid: 'Paid',
  payment_failed: 'Payment failed',
  cancelled: 'Cancelled',
  expired: 'Expired',
}

/** The words for what became of an order's payment (`payment_status`), `''` while there is none. */
export function paymentLabel(status: string, payment: string | null): string {
  if (payment === 'refunded') return 'Refunded'
  if (payment === 'succeeded') return status === 'paid' ? 'Charged' : 'Charged; a refund is on its way'
  if (payment === 'failed') return 'Declined'
  return status === 'pending' ? 'Being processed' : 'Not charged'
}

/** What every page needs to draw its shell: the session (the header's links, the forms' token) and a notice. */
export type PageContext = { session: Session | undefined; flash?: Flash | undefined; path: string }

type LayoutProps = PageContext & { title: string; liveStatus?: boolean }

/**
 * The whole page: header with the shop's navigation (and the admin's, for an admin), the logout
 * form, one `<main>` with the page's `<h1>` first, a footer. Links the stylesheet and, when asked,
 * the live-status script (deferred: the page is usable before it runs).
 */
export function Layout({ title, session, flash, path, liveStatus, children }: PropsWithChildren<LayoutProps>) {
  const user = session?.user
  const current = (href: string) => (href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`))
  const link = (href: string, text: string) => (
    <li>
      <a href={href} aria-current={current(href) ? 'page' : undefined}>
        {text}
      </a>
    </li>
  )
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Shop`}</title>
        <link rel="icon" href={assets.icon.path} type="image/svg+xml" />
        <link rel="stylesheet" href={assets.css.path} />
        {liveStatus ? <script src={assets.liveStatus.path} defer></script> : null}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="site">
          <div class="wrap bar">
            <a class="brand" href="/">
              Shop<span>.</span>
            </a>
            <nav aria-label="Main">
              <ul>
                {link('/', 'Catalog')}
                {user ? link('/cart', 'Cart') : null}
                {user ? link('/orders', 'My orders') : null}
                {user?.role === 'admin' ? link('/admin/products', 'Products') : null}
                {user?.role === 'admin' ? link('/admin/orders', 'All orders') : null}
              </ul>
            </nav>
            <div class="account">
              {user ? (
                <>
                  <span class="who">{user.name || user.email}</span>
                  <form method="post" action="/logout">
                    <Csrf session={session} />
                    <button type="submit" class="link">
                      Log out
                    </button>
                  </form>
                </>
              ) : (
                <>
                  <a href="/login" aria-current={path === '/login' ? 'page' : undefined}>
                    Log in
                  </a>
                  <a href="/register" aria-current={path === '/register' ? 'page' : undefined}>
                    Register
                  </a>
                </>
              )}
            </div>
          </div>
        </header>
        <main id="main" class="wrap" tabindex={-1}>
          {flash ? (
            <div class={`alert alert-${flash.kind}`} role={flash.kind === 'error' ? 'alert' : 'status'}>
              {flash.text}
            </div>
          ) : null}
          {children}
        </main>
        <footer class="site">
          <div class="wrap">Prices include VAT. Payments are simulated: no money changes hands.</div>
        </footer>
      </body>
    </html>
  )
}

/**
 * Answers a page: `<!doctype html>` and the JSX, as `text/html`, with `Cache-Control: no-store`
 * (a page may show a signed-in user's cart or orders: never kept by a cache, nor shown again from
 * history after logging out).
 */
export async function render(c: Context, page: Child, status: 200 | 400 | 403 | 404 | 409 | 422 | 429 | 500 | 503 = 200) {
  c.header('Cache-Control', 'no-store')
  return c.html(<>{raw('<!doctype html>')}{page}</>, status)
}

/** The hidden `_csrf` field every form that changes something carries. */
export const Csrf = ({ session }: { session: Session | undefined }) => <input type="hidden" name="_csrf" value={session?.csrf ?? ''} />

type FieldProps = {
  name: string
  label: string
  type?: string
  values?: FormValues
  value?: string | number
  errors?: FieldErrors
  hint?: string
  autocomplete?: string
  required?: boolean
  min?: number
  max?: number
  multiline?: boolean
  /** Focused when the page opens: the first field with an error, or the form's first. */
  autofocus?: boolean
}

/**
 * A labelled input with its hint and its error below it; an error sets `aria-invalid` and is
 * named by `aria-describedby`, so a screen reader reads it with the field.
 */
export function Field(p: FieldProps) {
  const id = `f-${p.name}`
  const error = p.errors?.[p.name]
  const given = p.values?.[p.name]
  const value = p.value !== undefined ? String(p.value) : typeof given === 'string' ? given : ''
  const described = [p.hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined
  const common = {
    id,
    name: p.name,
    required: p.required,
    autocomplete: p.autocomplete,
    autofocus: p.autofocus || undefined,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': described,
  } as const
  return (
    <div class="field">
      <label for={id}>{p.label}</label>
      {p.multiline ? (
        <textarea {...common}>{value}</textarea>
      ) : (
        <input {...common} type={p.type ?? 'text'} value={p.type === 'password' ? undefined : value} min={p.min} max={p.max} inputmode={p.type === 'number' ? 'numeric' : undefined} />
      )}
      {p.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {p.hint}
        </p>
      ) : null}
      {error ? (
        <p class="error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </div>
  )
}

/** The first field of `order` that has an error, for `autofocus`; the first of all when none has. */
export const firstInvalid = (errors: FieldErrors | undefined, order: string[]) => order.find((f) => errors?.[f]) ?? (errors?.[''] ? undefined : order[0])

/** A form-wide error (`errors['']`), announced as an alert. */
export const FormError = ({ errors }: { errors?: FieldErrors | undefined }) =>
  errors?.[''] ? (
    <div class="alert alert-error" role="alert">
      {errors['']}
    </div>
  ) : null

/** Whole cents as money. */
export const Price = ({ cents }: { cents: number }) => <span class="price">{formatCents(cents)}</span>

/** How many a product has left, in words: "Sold out", "3 left" (five or fewer), "In stock". */
export function Availability({ stock }: { stock: number }) {
  if (stock <= 0) return <span class="stock stock-out">Sold out</span>
  if (stock <= 5) return <span class="stock stock-low">{`${stock} left`}</span>
  return <span class="stock stock-ok">In stock</span>
}

/** A coloured square with the product's initial, in one of six colours picked by its id. */
export function Tile({ id, name, big }: { id: string; name: string; big?: boolean }) {
  let h = 0
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  const initial = [...name.trim()][0]?.toUpperCase() ?? '?'
  return (
    <div class={`tile t${h % 6}${big ? ' big' : ''}`} aria-hidden="true">
      {initial}
    </div>
  )
}

/** An order's status as a coloured badge. */
export const StatusBadge = ({ status }: { status: string }) => <span class={`status status-${status}`}>{STATUS_LABELS[status] ?? status}</span>

type PagerProps = { page: number; pages: number; href: (page: number) => string; label?: string }

/** "Previous", "Page 2 of 5", "Next" links, in a `<nav>` of their own; nothing for a single page. */
export function Pager({ page, pages, href, label = 'Pages' }: PagerProps) {
  if (pages <= 1) return null
  return (
    <nav class="pager" aria-label={label}>
      {page > 1 ? (
        <a class="button secondary" href={href(page - 1)} rel="prev">
          ← Previous
        </a>
      ) : null}
      <span>{`Page ${page} of ${pages}`}</span>
      {page < pages ? (
        <a class="button secondary" href={href(page + 1)} rel="next">
          Next →
        </a>
      ) : null}
    </nav>
  )
}

/** A short form of an order's id, as people read it: its first eight characters. */
export const shortId = (id: string) => id.slice(0, 8)
