/**
 * @module
 * Files the build put beside a function's bundle for clients to fetch as they are: the API
 * documents (`/api/<group>/openapi.json`; auth's merged `/api/openapi.json`, `/api/asyncapi.json`
 * and the `/api/docs` page with its assets). Each file under `public/` is one GET route, its path
 * the file's path (`public/api/products/openapi.json` → `GET /api/products/openapi.json`), an
 * `index.html` the route of its folder. No directory listing, no path from the request ever
 * touches the file system: the routes are fixed when the app is made.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Hono } from 'hono'

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
}

// The docs page runs only its own scripts and styles, and talks to its own origin only.
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** The URL paths of the files under `dir` (`public/`), each with its file: `index.html` also at its folder's path. */
export function publicFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>()
  if (!existsSync(dir)) return files
  const walk = (at: string) => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        const url = '/' + relative(dir, path).split(sep).join('/')
        files.set(url, path)
        if (name === 'index.html') files.set(url.slice(0, -'/index.html'.length) || '/', path)
      }
    }
  }
  walk(dir)
  return files
}

/**
 * Adds a `GET` route to `app` for every file under `dir` (see the module's note), when `dir`
 * exists. Answers carry the file's media type by its extension, `Cache-Control: public,
 * max-age=300` and `X-Content-Type-Options: nosniff`; HTML pages a Content-Security-Policy that
 * allows only the origin's own scripts, styles and requests. A file is read on first request and
 * kept (they do not change while the process runs).
 */
export function servePublicFiles(app: Hono, dir: URL | string): void {
  const root = typeof dir === 'string' ? dir : fileURLToPath(dir)
  for (const [url, path] of publicFiles(root)) {
    const ext = /\.[^./]+$/.exec(path)?.[0] ?? ''
    const type = TYPES[ext] ?? 'application/octet-stream'
    let body: Buffer | undefined
    app.get(url, (c) => {
      body ??= readFileSync(path)
      return c.body(new Uint8Array(body), 200, {
        'Content-Type': type,
        'Cache-Control': 'public, max-age=300',
        'X-Content-Type-Options': 'nosniff',
        ...(ext === '.html' ? { 'Content-Security-Policy': PAGE_POLICY } : {}),
      })
    })
  }
}
