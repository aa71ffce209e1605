/**
 * @module
 * The storefront's only script: the live status of an order. It runs in the browser, never on the
 * server. esbuild compiles it with the rest of the function, and assets.ts serves the compiled
 * function's own source text, called at once, as a file of this origin: so it must stay
 * self-contained (no imports, nothing from outside its body). Without it the order page works
 * the same, only a reload shows a new status.
 */

// The little of the DOM it uses (the project's TypeScript has no DOM library).
type El = {
  getAttribute(name: string): string | null
  setAttribute(name: string, value: string): void
  textContent: string | null
  hidden: boolean
}
type Doc = { querySelector(selector: string): El | null; querySelectorAll(selector: string): { forEach(fn: (el: El) => void): void } }

/**
 * What `GET /orders/:id/status` answers: `status` (the API's word), `label` and `payment` (the
 * page's words), `pending` (whether a cancel is still possible), `final` (nothing will change).
 */
export type LiveStatus = { status: string; label: string; payment: string; pending: boolean; final: boolean }

/**
 * Finds the element with `data-status-url` and asks that URL for the order's status every second
 * until it is final; on a change it rewrites the element's text and `data-status` (its colour), the
 * `[data-payment-status]` text, and hides every `[data-while-pending]` (the cancel form) once the
 * order is no longer pending. A failed poll waits twice as long before the next (up to 10 s); a
 * 401 or 404 (logged out, no such order) stops it.
 */
export function liveOrderStatus(): void {
  const doc = (globalThis as unknown as { document: Doc }).document
  const el = doc.querySelector('[data-status-url]')
  const url = el?.getAttribute('data-status-url')
  if (!el || !url) return
  let wait = 1000
  const poll = async () => {
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      if (res.status === 401 || res.status === 404) return
      if (!res.ok) throw new Error(String(res.status))
      const now = (await res.json()) as LiveStatus
      if (el.getAttribute('data-status') !== now.status) {
        el.setAttribute('data-status', now.status)
        el.setAttribute('class', `status status-${now.status}`)
        el.textContent = now.label
      }
      const payment = doc.querySelector('[data-payment-status]')
      if (payment && payment.textContent !== now.payment) payment.textContent = now.payment
      if (!now.pending) doc.querySelectorAll('[data-while-pending]').forEach((e) => (e.hidden = true))
      if (now.final) return
      wait = 1000
    } catch {
      wait = Math.min(wait * 2, 10_000)
    }
    setTimeout(poll, wait)
  }
  setTimeout(poll, wait)
}
