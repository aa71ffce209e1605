/**
 * Accounts: `GET|POST /register`, `GET|POST /login` and `POST /logout`. Logging in goes through
 * the auth function; the access token it answers is kept in a new session (session.ts), never
 * sent to the browser.
 */
import type { Context, Hono } from 'hono'
import * as v from 'valibot'
import { Text } from '../../../shared/validate.ts'
import type { PageDeps } from '../app.tsx'
import { localPath, problemErrors, readForm, requiredText, type FieldErrors, type FormValues } from '../forms.ts'
import { clearSessionCookie, ensureSession, setSessionCookie, type Flash } from '../session.ts'
import type { Login, Shop } from '../shop.ts'
import { Csrf, Field, FormError, Layout, firstInvalid, render, type PageContext } from '../views.tsx'
import { clientAddress, csrf, pageContext } from './guards.tsx'

/** A valibot schema: the login form. Only presence is checked here; auth decides the rest. */
export const LoginForm = v.object({
  email: requiredText('Enter your email address.', 254),
  password: v.pipe(Text, v.nonEmpty('Enter your password.')),
  next: v.optional(v.string(), '/'),
})

/** A valibot schema: the registration form. Only presence is checked here; auth's rules (a real email, 8 to 64 characters of password) come back as its field errors. */
export const RegisterForm = v.object({
  name: requiredText('Enter your name.', 100),
  email: requiredText('Enter your email address.', 254),
  password: v.pipe(Text, v.nonEmpty('Choose a password.')),
})

/** The routes of registering, logging in and logging out. */
export function accountPages(app: Hono, { shop, sessions }: PageDeps) {
  // A new session per login: the token it had before (and its CSRF token) are worth nothing after.
  const signIn = async (c: Context, login: Login, flash?: Flash) => {
    const { token, session } = await sessions.signIn(c.get('session'), login.user, login.token, login.expires_in)
    setSessionCookie(c, token, login.expires_in)
    if (flash) await sessions.setFlash(session, flash)
  }

  app.get('/register', async (c) => {
    if (c.get('session')?.user) return c.redirect('/', 303)
    await ensureSession(c, sessions)
    return render(c, <RegisterPage ctx={await pageContext(c, sessions)} />)
  })

  app.post('/register', csrf, async (c) => {
    const form = await readForm(c, RegisterForm)
    const again = async (errors: FieldErrors, status: 400 | 409 | 422 | 429) => render(c, <RegisterPage ctx={await pageContext(c, sessions)} values={form.values} errors={errors} />, status)
    if (!form.ok) return again(form.errors, 400)
    const made = await shop.register(form.data, clientAddress(c))
    if (!made.ok) {
      if (made.problem.status === 409) return again({ email: 'An account with this email address exists already. Log in instead?' }, 409)
      return again(problemErrors(made.problem), 400)
    }
    const login = await shop.login({ email: form.data.email, password: form.data.password }, clientAddress(c))
    if (!login.ok) return c.redirect('/login', 303)
    await signIn(c, login.value, { kind: 'success', text: `Welcome, ${login.value.user.name}! Your account is ready.` })
    return c.redirect('/', 303)
  })

  app.get('/login', async (c) => {
    const next = localPath(c.req.query('next'))
    if (c.get('session')?.user) return c.redirect(next, 303)
    await ensureSession(c, sessions)
    return render(c, <LoginPage ctx={await pageContext(c, sessions)} values={{ next }} />)
  })

  app.post('/login', csrf, async (c) => {
    const form = await readForm(c, LoginForm)
    const again = async (errors: FieldErrors, status: 400 | 401 | 429) =>
      render(c, <LoginPage ctx={await pageContext(c, sessions)} values={{ ...form.values, next: localPath(form.values.next) }} errors={errors} />, status === 401 ? 400 : status)
    if (!form.ok) return again(form.errors, 400)
    const login = await shop.login({ email: form.data.email, password: form.data.password }, clientAddress(c))
    if (!login.ok) {
      const { status, detail } = login.problem
      if (status === 401) return again({ '': 'The email address or the password is wrong.', password: 'Check the password, or the email address above.' }, 401)
      if (status === 429) return again({ '': `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.` }, 429)
      return again(problemErrors(login.problem), 400)
    }
    await signIn(c, login.value)
    return c.redirect(localPath(form.data.next), 303)
  })

  app.post('/logout', csrf, async (c) => {
    const session = c.get('session')
    if (session) await sessions.end(session)
    clearSessionCookie(c)
    return c.redirect('/', 303)
  })
  // Someone who types the address: logging out is a form's POST, and a GET changes nothing.
  app.get('/logout', (c) => c.redirect('/', 303))
}

type FormPageProps = { ctx: PageContext; values?: FormValues; errors?: FieldErrors }

function RegisterPage({ ctx, values, errors }: FormPageProps) {
  const focus = firstInvalid(errors, ['name', 'email', 'password'])
  return (
    <Layout {...ctx} title="Create an account">
      <h1>Create an account</h1>
      <form method="post" action="/register" class="form" novalidate>
        <FormError errors={errors} />
        <Csrf session={ctx.session} />
        <Field name="name" label="Your name" autocomplete="name" values={values} errors={errors} required autofocus={focus === 'name'} />
        <Field name="email" label="Email address" type="email" autocomplete="email" values={values} errors={errors} required autofocus={focus === 'email'} />
        <Field name="password" label="Password" type="password" autocomplete="new-password" hint="8 to 64 characters." errors={errors} required autofocus={focus === 'password'} />
        <button type="submit">Create account</button>
      </form>
      <p class="hint">
        Have an account already? <a href="/login">Log in</a>
      </p>
    </Layout>
  )
}

function LoginPage({ ctx, values, errors }: FormPageProps) {
  const focus = firstInvalid(errors, ['email', 'password'])
  const next = typeof values?.next === 'string' ? values.next : '/'
  return (
    <Layout {...ctx} title="Log in">
      <h1>Log in</h1>
      <form method="post" action="/login" class="form" novalidate>
        <FormError errors={errors} />
        <Csrf session={ctx.session} />
        <input type="hidden" name="next" value={next} />
        <Field name="email" label="Email address" type="email" autocomplete="username" values={values} errors={errors} required autofocus={focus === 'email'} />
        <Field name="password" label="Password" type="password" autocomplete="current-password" errors={errors} required autofocus={focus === 'password'} />
        <button type="submit">Log in</button>
      </form>
      <p class="hint">
        New here? <a href="/register">Create an account</a>
      </p>
    </Layout>
  )
}
