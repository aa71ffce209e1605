/**
 * The dead-letter Service's BROKER_URLS against eventing/: a redrive must send each type to the
 * Broker whose Triggers take it, so a Trigger on a new type needs its line in the Service.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadManifests } from '../../eventing/local/manifests.ts'

const root = new URL('../../', import.meta.url)

async function brokerUrlsOfService(): Promise<Record<string, string>> {
  const service = parse(await readFile(new URL('knative/services/500-service-dead-letter.yaml', root), 'utf8'))
  const env = service.spec.template.spec.containers[0].env as { name: string; value?: string }[]
  return JSON.parse(env.find((e) => e.name === 'BROKER_URLS')?.value ?? '{}')
}

describe('the dead-letter Service’s BROKER_URLS', () => {
  it('sends each type a Trigger takes to the ingress of that Trigger’s Broker, and names no other', async () => {
    const { namespace, triggers } = await loadManifests(new URL('eventing/', root).pathname)
    const expected: Record<string, string> = {}
    for (const t of triggers) {
      const type = t.filter.type
      expect(type, `Trigger ${t.name} filters on a type`).toBeDefined()
      const url = `http://${t.broker}-broker-ingress.${namespace}.svc.cluster.local/`
      expect(expected[type!] ?? url, `${type} travels on one Broker`).toBe(url)
      expected[type!] = url
    }
    expect(await brokerUrlsOfService()).toEqual(expected)
  })
})
