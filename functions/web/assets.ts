/**
 * @module
 * The files the pages link to, served by the function itself: the stylesheet, the live-status
 * script and an icon. Each URL carries a hash of its content (`/assets/shop.3f2a9c1e.css`), so a
 * browser may keep it for a year, and a new version is a new URL.
 */
import { createHash } from 'node:crypto'
import type { Hono } from 'hono'
import { liveOrderStatus } from './live-status.ts'
import { stylesheet } from './styles.ts'

type Asset = { path: string; type: string; body: string }

const asset = (name: string, ext: string, type: string, body: string): Asset => ({
  path: `/assets/${name}.${createHash('sha256').update(body).digest('hex').slice(0, 10)}.${ext}`,
  type,
  body,
})

// The stylesheet without the line breaks and indentation that only help reading it.
const css = stylesheet.replace(/\n\s*/g, '').trim()
// The function's compiled source, called at once: esbuild minified it with the rest of the bundle.
const script = `"use strict";(${liveOrderStatus.toString()})();\n`
const icon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#9a3412"/><path d="M9 12h12v6a6 6 0 0 1-6 6 6 6 0 0 1-6-6zm12 2h2a3 3 0 0 1 0 6h-2" fill="none" stroke="#fff" stroke-width="2.4"/></svg>`

/** The URL of each asset, for the pages' `<link>` and `<script>` tags. */
export const assets = {
  css: asset('shop', 'css', 'text/css; charset=utf-8', css),
  liveStatus: asset('live-status', 'js', 'text/javascript; charset=utf-8', script),
  icon: asset('icon', 'svg', 'image/svg+xml', icon),
}

/** Serves every asset at its URL, cacheable for a year (`immutable`: its URL changes with its content). */
export function serveAssets(app: Hono) {
  for (const a of Object.values(assets)) {
    app.get(a.path, (c) =>
      c.body(a.body, 200, { 'Content-Type': a.type, 'Cache-Control': 'public, max-age=31536000, immutable' }),
    )
  }
}
