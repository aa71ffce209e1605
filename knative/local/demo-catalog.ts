/** What a fresh local shop sells, so that a newcomer has something to put in a cart. */
export const demoCatalog = [
  { name: 'Espresso cup', description: 'Porcelain, 80 ml, dishwasher safe', price_cents: 900, stock: 120 },
  { name: 'Pour-over kettle', description: 'Gooseneck spout, 1 l, stainless steel', price_cents: 4500, stock: 25 },
  { name: 'Burr grinder', description: '40 grind settings, conical steel burrs', price_cents: 12900, stock: 10 },
  { name: 'Coffee beans, Ethiopia', description: '250 g, light roast, washed', price_cents: 1450, stock: 200 },
  { name: 'Coffee beans, Brazil', description: '250 g, medium roast, natural', price_cents: 1150, stock: 200 },
  { name: 'Paper filters', description: '100 pieces, size 02', price_cents: 650, stock: 300 },
  { name: 'Milk jug', description: '350 ml, for latte art', price_cents: 1900, stock: 40 },
  { name: 'Travel mug', description: 'Double wall, 300 ml, leak proof', price_cents: 2400, stock: 60 },
]
