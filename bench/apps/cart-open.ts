/**
 * A bench-only function: the cart's `GET /api/cart` with no authentication at all: the user is
 * whoever `X-User-ID` names. Same stack (createApp, startFunction, the shared pool), same SQL and
 * statement names as functions/cart/app.ts (its readCart), so that against the real cart bundle
 * with a Bearer token the ratio is the whole price of authentication.
 * Bundled like the functions (bench/run.mjs); run with MIGRATE=off.
 */
import * as v from 'valibot'
import { BaseEnv, loadConfig } from '../../shared/config.ts'
import { unauthorized } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import { main, startFunction } from '../../shared/server.ts'
import { readCart } from '../../functions/cart/app.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

main('cart-open', async () => {
  const config = loadConfig(v.object(BaseEnv), process.env)
  return startFunction({
    name: 'cart-open',
    config,
    schema: 'cart',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => {
      const app = createApp({ log, metrics, pool })
      app.get('/api/cart', async (c) => {
        const userId = c.req.header('X-User-ID')
        if (!userId || !UUID.test(userId)) throw unauthorized()
        await pool.query({
          name: 'cart-create',
          text: 'INSERT INTO cart.carts (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING',
          values: [userId],
        })
        return c.json(await readCart(pool, userId))
      })
      return app
    },
  })
})
