import * as v from 'valibot'
import { BaseEnv, loadConfig, urlVar } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { createApiClient } from './api.ts'
import { webApp } from './app.tsx'
import { createShop } from './shop.ts'

const http = urlVar(['http:', 'https:'])
const WebEnv = v.object({ ...BaseEnv, AUTH_URL: http, PRODUCT_URL: http, CART_URL: http, ORDER_URL: http })

main('web', async () => {
  const config = loadConfig(WebEnv, process.env)
  const send = createApiClient({ urls: { auth: config.AUTH_URL, product: config.PRODUCT_URL, cart: config.CART_URL, order: config.ORDER_URL } })
  return startFunction({
    name: 'web',
    config,
    schema: 'web',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => webApp({ pool, log, metrics, shop: createShop(send) }),
  })
})
