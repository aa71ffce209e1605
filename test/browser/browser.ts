/**
 * What the browser tests share: Debian's Chromium driven by playwright-core (headless, no sandbox,
 * nothing fetched in the background: this machine has no internet), an accessibility check of
 * each page with axe-core, and screenshots of the pages in /tmp/web-shots.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { AxeBuilder } from '@axe-core/playwright'
import { chromium, type Browser, type Page } from 'playwright-core'
import { expect } from 'vitest'

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium'

/** Where the tests leave a screenshot of each page they check. */
export const SHOTS = '/tmp/web-shots'

let said = false
/**
 * Whether Chromium is here. When it is not, writes once `skipped: chromium is not installed; …`
 * to stderr, so the skip is never silent. CI (`.ci/run`) installs it.
 */
export function hasChromium(): boolean {
  const found = existsSync(CHROMIUM)
  if (!found && !said) {
    said = true
    console.warn(`skipped: chromium is not installed (${CHROMIUM}); the browser tests do not run here. To run them: apt-get install chromium`)
  }
  return found
}

/** Chromium, headless; every switch that would reach for the network on its own is off. */
export async function launch(): Promise<Browser> {
  await mkdir(SHOTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  })
}

/**
 * Checks the page as it is now with axe-core (WCAG 2.x A and AA rules, and best practices): no
 * violation of serious or critical impact, each listed with its elements when there is one. Then
 * saves a screenshot of the whole page as `<SHOTS>/<name>.png`.
 */
export async function checkPage(page: Page, name: string) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze()
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
  expect(bad, `accessibility of ${name} (${page.url()})`).toEqual([])
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true })
}

/** The visible text of the page's `<main>`, spaces squeezed: what a person reads there. */
export const mainText = async (page: Page) => ((await page.locator('main').innerText()) ?? '').replace(/\s+/g, ' ')
