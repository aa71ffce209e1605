/** The page every error is shown as: what happened, in words, and a way back. */
import { Layout, type PageContext } from '../views.tsx'

type ErrorProps = { ctx: PageContext; status: number; title: string; message: string }

/** An error page: its `title` as the `<h1>`, the `message`, and links back to the catalog (and to the login for a 403 of someone not signed in). */
export function ErrorPage({ ctx, status, title, message }: ErrorProps) {
  return (
    <Layout {...ctx} title={title}>
      <h1>{title}</h1>
      <p>{message}</p>
      <p class="hint">{`Error ${status}`}</p>
      <p>
        <a class="button secondary" href="/">
          Back to the catalog
        </a>
      </p>
    </Layout>
  )
}
