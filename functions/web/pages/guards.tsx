/**
 * @module
 * What the page routes share: who is asking (the signed-in user, an admin), the page's context
 * (its session and the notice it shows once), and the small readings of a request (`?page=`, the
 * shopper's address).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { clientIp } from '../../../shared/client-address.ts'
import { forbidden } from '../../../shared/errors.ts'
import { formValues } from '../forms.ts'
import { csrfMatches, type Session, type SessionStore, type SessionUser } from '../session.ts'
import { render } from '../views.tsx'
import { ErrorPage } from './error.tsx'
import type { PageContext } from '../views.tsx'

/**
 * Lets only a signed-in user through; anyone else is sent to the login page (303), which brings
 * them back here after (`?next=` this page, for a GET; the page a form came from is not known).
 */
export const signedIn: MiddlewareHandler = async (c, next) => {
  if (!c.get('session')?.user) {
    const back = c.req.method === 'GET' ? `?next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}` : ''
    return c.redirect(`/login${back}`, 303)
  }
  await next()
}

/**
 * Refuses (403) a form that does not carry the session's CSRF token in `_csrf`, before anything
 * else of the route runs. Every POST route has it first: another site can make a browser post a
 * form here, with the cookie when SameSite allows it, but cannot read the token from our pages.
 */
export const csrf: MiddlewareHandler = async (c, next) => {
  if (!csrfMatches(c.get('session'), (await formValues(c))._csrf)) {
    return render(c, <ErrorPage ctx={{ session: c.get('session'), path: c.req.path }} status={403} title="This form has expired" message="It was open too long, or it did not come from this shop. Go back, reload the page and send it again." />, 403)
  }
  await next()
}

/** Lets only an admin through: anyone else signed in gets 403, and someone not signed in the login page. */
export const adminOnly: MiddlewareHandler = async (c, next) =>
  signedIn(c, async () => {
    if (c.get('session')?.user?.role !== 'admin') throw forbidden('this page is for the shop’s admins')
    await next()
  })

/** The signed-in user of a route behind `signedIn`: the session, the user and the access token. */
export function userOf(c: Context): { session: Session; user: SessionUser; token: string } {
  const session = c.get('session')
  if (!session?.user || !session.accessToken) throw new Error('userOf needs the signedIn middleware before it')
  return { session, user: session.user, token: session.accessToken }
}

/** The page's context: its session, its path, and the notice kept for it (taken now, so it shows once). */
export async function pageContext(c: Context, sessions: SessionStore): Promise<PageContext> {
  const session = c.get('session')
  return { session, path: c.req.path, flash: await sessions.takeFlash(session) }
}

/** `?page=` as a page number from 1; anything else is page 1. */
export function pageNumber(given: string | undefined): number {
  const n = Number(given)
  return Number.isInteger(n) && n >= 1 && n <= 100_000 ? n : 1
}

/** The shopper's IP address, by the rule auth uses (shared/client-address.ts), to pass on to auth as X-Forwarded-For. */
export const clientAddress = (c: Context): string | undefined => clientIp(c)
