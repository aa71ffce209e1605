/**
 * @module
 * Sessions: the browser holds a random token in an `HttpOnly`, `SameSite=Lax` cookie (`Secure`
 * when the request came over TLS); the session itself, with the access token auth issued, is a
 * row of `web.sessions`, keyed by the token's SHA-256. So the browser never holds a JWT, and
 * logging out ends the session everywhere at once (the row is gone). Each session has its CSRF
 * token (the synchronizer token pattern): every form that changes something carries it in `_csrf`,
 * and every POST is refused without it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { Role } from '../../shared/auth.ts'
import type { Pool } from '../../shared/db.ts'
import type { Logger } from '../../shared/log.ts'

/** The cookie that carries the session's token. */
export const SESSION_COOKIE = 'shop_session'

/** A notice shown once, on the page a form redirects to. */
export type Flash = { kind: 'success' | 'error'; text: string }

/** The signed-in user, as the login answered it. */
export type SessionUser = { id: string; email: string; name: string; role: Role }

/**
 * One browser's session: `csrf` the token its forms carry; `user` and `accessToken` once it logged
 * in (an anonymous session has neither); `flash` a notice for the next page.
 */
export type Session = {
  tokenHash: Buffer
  csrf: string
  user: SessionUser | undefined
  accessToken: string | undefined
  flash: Flash | undefined
  expiresAt: Date
}

declare module 'hono' {
  interface ContextVariableMap {
    /** The request's session, when its cookie names a live one (set by `sessionMiddleware`). */
    session: Session | undefined
  }
}

type Row = {
  token_hash: Buffer
  csrf_token: string
  user_id: string | null
  email: string | null
  name: string | null
  role: Role | null
  access_token: string | null
  flash: Flash | null
  expires_at: Date
}

const COLUMNS = 'token_hash, csrf_token, user_id, email, name, role, access_token, flash, expires_at'

// 32 random bytes, base64url: what a cookie may name. Anything else is not looked up.
const TOKEN = /^[\w-]{43}$/
const newToken = () => randomBytes(32).toString('base64url')
const hashOf = (token: string) => createHash('sha256').update(token).digest()

const toSession = (r: Row): Session => ({
  tokenHash: r.token_hash,
  csrf: r.csrf_token,
  user: r.user_id ? { id: r.user_id, email: r.email ?? '', name: r.name ?? '', role: r.role ?? 'customer' } : undefined,
  accessToken: r.access_token ?? undefined,
  flash: r.flash ?? undefined,
  expiresAt: r.expires_at,
})

type StoreOptions = {
  pool: Pool
  log: Logger
  /** How long a session that has not logged in lasts, in seconds (default 7,200: two hours). */
  anonymousTtlS?: number
}

/**
 * The sessions of `web.sessions`. Rows past `expires_at` are never answered, and are deleted now
 * and then (at most once a minute, after a session is made), in the background.
 */
export function createSessionStore({ pool, log, anonymousTtlS = 7_200 }: StoreOptions) {
  let lastSweep = 0
  const sweep = () => {
    if (Date.now() - lastSweep < 60_000) return
    lastSweep = Date.now()
    pool.query('DELETE FROM web.sessions WHERE expires_at < now()').catch((err: unknown) => log.warn('deleting expired sessions failed', { err }))
  }

  const insert = async (values: { user?: SessionUser; accessToken?: string; ttlS: number }) => {
    const token = newToken()
    const { rows } = await pool.query<Row>(
      `INSERT INTO web.sessions (token_hash, csrf_token, user_id, email, name, role, access_token, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
       RETURNING ${COLUMNS}`,
      [hashOf(token), newToken(), values.user?.id ?? null, values.user?.email ?? null, values.user?.name ?? null, values.user?.role ?? null, values.accessToken ?? null, values.ttlS],
    )
    sweep()
    return { token, session: toSession(rows[0]!) }
  }

  return {
    /** The live session a cookie's token names, or `undefined`. */
    async read(token: string | undefined): Promise<Session | undefined> {
      if (!token || !TOKEN.test(token)) return undefined
      const { rows } = await pool.query<Row>({
        name: 'web-session-read',
        text: `SELECT ${COLUMNS} FROM web.sessions WHERE token_hash = $1 AND expires_at > now()`,
        values: [hashOf(token)],
      })
      return rows[0] ? toSession(rows[0]) : undefined
    },
    /** A new session for a visitor who has not logged in, with its own CSRF token. */
    startAnonymous: () => insert({ ttlS: anonymousTtlS }),
    /**
     * A new session for a user who just logged in, lasting as long as the access token does
     * (`ttlS`). The token and the CSRF token are new: one fixed before the login (session
     * fixation) is worth nothing after it. `previous`, when given, is ended.
     */
    async signIn(previous: Session | undefined, user: SessionUser, accessToken: string, ttlS: number) {
      if (previous) await this.end(previous)
      return insert({ user, accessToken, ttlS })
    },
    /** Ends a session: its row is deleted, so its cookie names nothing any more. */
    async end(session: Session) {
      await pool.query('DELETE FROM web.sessions WHERE token_hash = $1', [session.tokenHash])
    },
    /** Keeps a notice for the next page this session shows. */
    async setFlash(session: Session, flash: Flash) {
      await pool.query('UPDATE web.sessions SET flash = $2 WHERE token_hash = $1', [session.tokenHash, JSON.stringify(flash)])
      session.flash = flash
    },
    /** The notice kept for this page, once: it is cleared as it is read. */
    async takeFlash(session: Session | undefined): Promise<Flash | undefined> {
      const flash = session?.flash
      if (!session || !flash) return undefined
      session.flash = undefined
      await pool.query('UPDATE web.sessions SET flash = NULL WHERE token_hash = $1', [session.tokenHash])
      return flash
    },
  }
}

/** What `createSessionStore` makes. */
export type SessionStore = ReturnType<typeof createSessionStore>

/**
 * Whether the request came over TLS: its own URL is `https:`, or the ingress in front said so in
 * `X-Forwarded-Proto` (TLS ends at the ingress). Only the cookie's `Secure` flag follows from it.
 */
export const overTls = (c: Context) =>
  new URL(c.req.url).protocol === 'https:' || c.req.header('X-Forwarded-Proto')?.split(',')[0]?.trim().toLowerCase() === 'https'

/**
 * Sets the session cookie: `HttpOnly` (no script reads it), `SameSite=Lax` (no other site's form
 * post sends it), `Path=/`, `Secure` over TLS, and `Max-Age` when given (in seconds; without it the
 * cookie lasts until the browser closes).
 */
export function setSessionCookie(c: Context, token: string, maxAgeS?: number) {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: overTls(c),
    path: '/',
    ...(maxAgeS ? { maxAge: Math.floor(maxAgeS) } : {}),
  })
}

/** Removes the session cookie from the browser. */
export const clearSessionCookie = (c: Context) => deleteCookie(c, SESSION_COOKIE, { path: '/', secure: overTls(c), httpOnly: true, sameSite: 'Lax' })

/** Reads the request's session from its cookie into `c.get('session')` (`undefined` when there is none or it ended). */
export function sessionMiddleware(store: SessionStore): MiddlewareHandler {
  return async function session(c, next) {
    c.set('session', await store.read(getCookie(c, SESSION_COOKIE)))
    await next()
  }
}

/**
 * The request's session, made (anonymous, with its cookie set) when it has none: what a page that
 * shows a form needs, so that the form's `_csrf` can be checked when it comes back.
 */
export async function ensureSession(c: Context, store: SessionStore): Promise<Session> {
  const existing = c.get('session')
  if (existing) return existing
  const { token, session } = await store.startAnonymous()
  setSessionCookie(c, token)
  c.set('session', session)
  return session
}

/** Whether `given` (a form's `_csrf`) is the session's CSRF token; compared in constant time. */
export function csrfMatches(session: Session | undefined, given: unknown): boolean {
  if (!session || typeof given !== 'string') return false
  const a = Buffer.from(given)
  const b = Buffer.from(session.csrf)
  return a.length === b.length && timingSafeEqual(a, b)
}
