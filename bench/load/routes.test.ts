import { describe, expect, it } from 'vitest'
import { pathOf, routeOf } from './routes.ts'

const id = '1b4e28ba-2fa1-41d2-883f-0016d3cca427'

describe('route templates', () => {
  it('names the API’s parameterised routes by their template', () => {
    expect(routeOf('GET', `/api/products/${id}`)).toBe('GET /api/products/:id')
    expect(routeOf('post', `/api/products/${id}/stock`)).toBe('POST /api/products/:id/stock')
    expect(routeOf('PUT', `/api/cart/items/${id}`)).toBe('PUT /api/cart/items/:productId')
    expect(routeOf('DELETE', `/api/cart/items/${id}`)).toBe('DELETE /api/cart/items/:productId')
    expect(routeOf('GET', `/api/orders/${id}`)).toBe('GET /api/orders/:id')
    expect(routeOf('POST', `/api/orders/${id}/cancel`)).toBe('POST /api/orders/:id/cancel')
    expect(routeOf('GET', `/api/payments/${id}`)).toBe('GET /api/payments/:orderId')
  })

  it('keeps routes without parameters, and drops origin, query and trailing slash', () => {
    expect(routeOf('GET', 'http://127.0.0.1:8080/api/products?limit=5&q=beans')).toBe('GET /api/products')
    expect(routeOf('GET', '/api/products/')).toBe('GET /api/products')
    expect(routeOf('POST', '/api/cart/items')).toBe('POST /api/cart/items')
    expect(routeOf('GET', '/api/auth/jwks.json')).toBe('GET /api/auth/jwks.json')
    expect(routeOf('GET', `https://shop.example.com/api/orders/${id}#x`)).toBe('GET /api/orders/:id')
  })

  it('folds ids in paths it does not know, so rows stay few', () => {
    expect(routeOf('GET', `/api/things/${id}/parts/42`)).toBe('GET /api/things/:id/parts/:id')
    expect(routeOf('GET', '/')).toBe('GET /')
    expect(routeOf('GET', 'http://host')).toBe('GET /')
  })

  it('takes the path of a URL', () => {
    expect(pathOf('http://h:1/a/b?c=d')).toBe('/a/b')
    expect(pathOf('a/b')).toBe('/a/b')
  })
})
