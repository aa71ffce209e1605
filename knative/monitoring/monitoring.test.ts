/**
 * Prometheus and Grafana, checked offline:
 * - promtool (Debian's `prometheus` package) checks the configuration, the alert rules and the
 *   dashboard's queries, runs the rules' unit tests (prometheus/alerts.test.yml), and runs the
 *   scrape job's relabeling on pods shaped like Knative's;
 * - every metric that an alert or a dashboard panel queries is one the functions really export:
 *   the apps are built in-process and their /metrics read;
 * - the dashboard, the provisioning files and the manifests agree with each other.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { authApp } from '../../functions/auth/app.ts'
import { createPasswordHasher, type PasswordHasher } from '../../functions/auth/password.ts'
import { cartApp } from '../../functions/cart/app.ts'
import { deadLetterApp } from '../../functions/dead-letter/app.ts'
import { orderApp } from '../../functions/order/app.ts'
import { paymentApp } from '../../functions/payment/app.ts'
import { productApp } from '../../functions/product/app.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { fetchVia, quietLog, testKeys, testPool } from '../../test/support.ts'
import { hasTool } from '../../test/tools.ts'

const here = new URL('./', import.meta.url).pathname
const file = (path: string) => join(here, path)
const read = (path: string) => readFileSync(file(path), 'utf8')

// ------------------------------------------------------------------------------- tools

type Run = { status: number; stdout: string; stderr: string }

/** Runs a tool. Tests that call one are skipped where it is missing (see test/tools.ts). */
function run(tool: string, args: string[], install: string, cwd = here): Run {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', timeout: 60_000 })
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(`${tool} is missing: ${install}`)
  if (r.error) throw r.error
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}
const promtool = (args: string[], cwd?: string) => run('promtool', args, 'apt-get install prometheus', cwd)
const kubectl = (args: string[]) => run('kubectl', args, 'install kubectl (with kustomize v5); .ci/run expects it on the machine')
const ok = (r: Run) => `exit ${r.status}\n${r.stdout}\n${r.stderr}`

const temps: string[] = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'shop-monitoring-'))
  temps.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
})

// ------------------------------------------------------------------------------- files

type Rule = { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
type RulesFile = { groups: { name: string; rules: Rule[] }[] }
type RuleTest = { name?: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }
type ScrapeConfig = { job_name: string; kubernetes_sd_configs?: unknown; static_configs?: unknown; relabel_configs: unknown[] }
type PromConfig = { global: Record<string, string>; rule_files: string[]; scrape_configs: ScrapeConfig[] }
type Target = { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }
type Panel = { id: number; type: string; title: string; datasource?: { type?: string; uid?: string }; targets?: Target[]; panels?: Panel[]; gridPos: { x: number; y: number; w: number; h: number } }
type Variable = { name: string; type: string; datasource?: { uid?: string }; query?: string | { query?: string } }
type Dashboard = { uid: string; title: string; panels: Panel[]; templating: { list: Variable[] } }
type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string>; subjects?: any[]; roleRef?: any; rules?: any[] }

const alertsFile = () => parse(read('prometheus/alerts.yml')) as RulesFile
const rules = () => alertsFile().groups.flatMap((g) => g.rules)
const promConfig = () => parse(read('prometheus/prometheus.yml')) as PromConfig
const dashboard = () => JSON.parse(read('grafana/shop-dashboard.json')) as Dashboard
const manifests = () => ['prometheus.yaml', 'grafana.yaml'].flatMap((f) => parseAllDocuments(read(f)).map((d) => d.toJS() as K8s))
const one = (kind: string, name: string) => {
  const found = manifests().find((o) => o.kind === kind && o.metadata.name === name)
  if (!found) throw new Error(`no ${kind} ${name} in prometheus.yaml or grafana.yaml`)
  return found
}

/** Every panel, rows' nested panels included. */
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])])
const queryPanels = () => allPanels(dashboard().panels).filter((p) => p.type !== 'row')

/** The PromQL of the dashboard: every target, and the metric of each label_values() variable. */
function dashboardQueries(): string[] {
  const exprs = queryPanels().flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
  for (const v of dashboard().templating.list) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '')
    const labelValues = /^\s*label_values\(\s*(.*?)\s*,\s*[\w]+\s*\)\s*$/.exec(q)
    exprs.push(labelValues ? labelValues[1]! : q)
  }
  return exprs
}

/** Grafana's variables replaced by values Prometheus accepts, so that promtool can parse the query. */
const withoutGrafanaVariables = (expr: string) =>
  expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?\w+\}?/g, '.*')

// ------------------------------------------------------------------------------- PromQL names

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan'])

/**
 * The metric names a PromQL expression selects: identifiers outside strings, label matchers,
 * ranges and grouping clauses that are neither functions, aggregations (followed by `(`) nor
 * keywords. Numbers and durations start with a digit and are skipped.
 */
function metricNames(expr: string): Set<string> {
  const bare = withoutGrafanaVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names = new Set<string>()
  for (const m of bare.matchAll(/[0-9][\w.]*|([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m
    if (name && !call && !KEYWORDS.has(name.toLowerCase())) names.add(name)
  }
  return names
}

/** The metrics a /metrics text declares: `# HELP` lines, which prom-client prints even before a labelled metric has a sample. */
function declared(text: string) {
  const types = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!)
  const helps = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!))
  return { helps, types }
}

/** Whether a queried name is exported: declared, or a histogram's (or summary's) series. */
function isExported(text: string, name: string): boolean {
  const { helps, types } = declared(text)
  if (helps.has(name)) return true
  const series = /^(.*)_(bucket|sum|count)$/.exec(name)
  if (!series) return false
  const type = types.get(series[1]!)
  return type === 'histogram' || (type === 'summary' && series[2] !== 'bucket')
}

describe('metricNames', () => {
  it('finds the metrics of an expression, not its functions, labels, keywords, durations or variables', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (serving_knative_dev_service, le) (rate(http_request_duration_seconds_bucket{route=~"/api/.*"}[$__rate_interval]))) > 1'))
      .toEqual(new Set(['http_request_duration_seconds_bucket']))
    expect(metricNames('sum by (type) ((last_over_time(events_dead_lettered_total[10m]) unless present_over_time(events_dead_lettered_total[10m] offset 10m)) or increase(events_dead_lettered_total[10m])) > 0'))
      .toEqual(new Set(['events_dead_lettered_total']))
    expect(metricNames('60 * sum(rate(orders_total{status="paid"}[5m])) by (status) / on (status) group_left sum(payments_total) or vector(0)'))
      .toEqual(new Set(['orders_total', 'payments_total']))
    expect(metricNames('max(outbox_oldest_age_seconds @ end()) > bool 600 and on() up{job=\'x\'}')).toEqual(new Set(['outbox_oldest_age_seconds', 'up']))
  })
})

// ------------------------------------------------------------------------------- Prometheus

describe('Prometheus: alert rules', () => {
  it.skipIf(!hasTool('promtool'))('pass promtool check rules', () => {
    const r = promtool(['check', 'rules', file('prometheus/alerts.yml')])
    expect(r.status, ok(r)).toBe(0)
    expect(r.stdout + r.stderr).toContain(`SUCCESS: ${rules().length} rules found`)
  })

  it.skipIf(!hasTool('promtool'))('pass their unit tests (promtool test rules alerts.test.yml)', () => {
    const r = promtool(['test', 'rules', 'alerts.test.yml'], file('prometheus'))
    expect(r.status, ok(r)).toBe(0)
    expect(r.stdout + r.stderr).toContain('SUCCESS')
  })

  it('are the six alerts of the shop (errors, latency, stuck orders, outbox, dead letters, rejected events), each with a for, a severity, a summary and a description', () => {
    expect(rules().map((r) => r.alert).sort()).toEqual(
      ['EventsDeadLettered', 'EventsRejected', 'FunctionHighErrorRate', 'FunctionHighLatency', 'OrdersStuckPending', 'OutboxBacklog'],
    )
    for (const rule of rules()) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/)
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity)
      expect(rule.annotations?.summary, rule.alert).toBeTruthy()
      expect(rule.annotations?.description, rule.alert).toBeTruthy()
      // Pods come and go: a rule on raw per-pod series would fire and resolve with them.
      expect(rule.expr.trim(), rule.alert).toMatch(/^(sum|max|histogram_quantile)\b/)
    }
    const byName = Object.fromEntries(rules().map((r) => [r.alert, r]))
    expect(byName.FunctionHighErrorRate!.expr).toMatch(/sum by \(serving_knative_dev_service\)/)
    expect(byName.FunctionHighErrorRate!.for).toBe('5m')
    expect(byName.FunctionHighLatency!.expr).toMatch(/histogram_quantile\(0\.95,\s*sum by \(serving_knative_dev_service, le\)/)
    expect(byName.FunctionHighLatency!.for).toBe('10m')
    expect(byName.OutboxBacklog!.expr).toMatch(/> 600$/)
    expect(byName.OrdersStuckPending!.expr).toMatch(/> 600$/)
  })

  it('each have a unit test where they fire and one where they do not', () => {
    const tests = (parse(read('prometheus/alerts.test.yml')) as { rule_files: string[]; tests: RuleTest[] })
    expect(tests.rule_files).toEqual(['alerts.yml'])
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? [])
    for (const { alert } of rules()) {
      const mine = cases.filter((c) => c.alertname === alert)
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} fires in a test`).toBe(true)
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} stays silent in a test`).toBe(true)
    }
  })
})

describe('Prometheus: configuration', () => {
  it('scrapes every 15 s the pods of namespace shop, with the rules at the path the Deployment mounts', () => {
    const config = promConfig()
    expect(config.global).toMatchObject({ scrape_interval: '15s', evaluation_interval: '15s' })
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml'])
    expect(config.scrape_configs.map((j) => j.job_name)).toEqual(['kubernetes-pods'])
    // The one part promtool from Debian cannot read (see below), checked here.
    expect(config.scrape_configs[0]!.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: ['shop'] } }])
  })

  it.skipIf(!hasTool('promtool'))('passes promtool check config as written, but for Kubernetes discovery when promtool is built without it', () => {
    // Debian builds Prometheus without Kubernetes service discovery (NEWS.Debian: "Kubernetes
    // support has been completely removed"), so its promtool knows no kubernetes_sd_configs.
    // That must then be the only complaint; an upstream promtool must accept the file whole.
    const dir = tempDir()
    copyFileSync(file('prometheus/alerts.yml'), join(dir, 'alerts.yml'))
    writeFileSync(join(dir, 'prometheus.yml'), read('prometheus/prometheus.yml').replace('/etc/prometheus/alerts.yml', join(dir, 'alerts.yml')))
    const r = promtool(['check', 'config', 'prometheus.yml'], dir)
    if (r.status === 0) return
    const errors = (r.stdout + r.stderr).split('\n').filter((l) => /^\s+line \d+:/.test(l))
    expect(errors.map((l) => l.replace(/line \d+/, 'line N').trim()), ok(r)).toEqual(['line N: field kubernetes_sd_configs not found in type config.ScrapeConfig'])
  })

  describe('with the pods given statically, as pod-role discovery would find them', () => {
    // Pod-role discovery gives one target per declared container port, with these meta labels.
    const pod = (name: string, ip: string, port: number, phase: string, annotations: Record<string, string>, service?: string) => ({
      targets: [ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`],
      labels: {
        __meta_kubernetes_namespace: 'shop',
        __meta_kubernetes_pod_name: name,
        __meta_kubernetes_pod_ip: ip,
        __meta_kubernetes_pod_phase: phase,
        ...(service
          ? {
              __meta_kubernetes_pod_label_serving_knative_dev_service: service,
              __meta_kubernetes_pod_label_serving_knative_dev_revision: `${service}-00001`,
              __meta_kubernetes_pod_label_app: `${service}-00001`,
            }
          : { __meta_kubernetes_pod_label_app_kubernetes_io_name: name.replace(/-\w+$/, '') }),
        ...Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`__meta_kubernetes_pod_annotation_prometheus_io_${k}`, v])),
      },
    })
    const scrape = { scrape: 'true', port: '8080', path: '/metrics' }
    const pods = [
      pod('order-00001-deployment-a', '10.1.0.5', 8080, 'Running', scrape, 'order'), // the user container's port
      pod('order-00001-deployment-a', '10.1.0.5', 9091, 'Running', scrape, 'order'), // queue-proxy's
      pod('payment-00001-deployment-b', 'fd00::7', 8080, 'Running', scrape, 'payment'),
      pod('cart-00001-deployment-c', '10.1.0.9', 8080, 'Pending', scrape, 'cart'),
      pod('migrate-x1', '10.1.0.10', 8080, 'Succeeded', scrape, 'migrate'),
      pod('postgres-0', '10.1.0.11', 5432, 'Running', {}),
    ]
    let dir: string

    beforeAll(() => {
      dir = tempDir()
      copyFileSync(file('prometheus/alerts.yml'), join(dir, 'alerts.yml'))
      const config = promConfig()
      config.rule_files = [join(dir, 'alerts.yml')]
      for (const job of config.scrape_configs) {
        delete job.kubernetes_sd_configs
        job.static_configs = pods
      }
      writeFileSync(join(dir, 'prometheus.yml'), stringify(config))
    })

    it.skipIf(!hasTool('promtool'))('passes promtool check config, which checks the rule file too', () => {
      const r = promtool(['check', 'config', 'prometheus.yml'], dir)
      expect(r.status, ok(r)).toBe(0)
      expect(r.stdout + r.stderr).toContain('SUCCESS: 1 rule files found')
      expect(r.stdout + r.stderr).toContain(`SUCCESS: ${rules().length} rules found`)
    })

    it.skipIf(!hasTool('promtool'))('relabels: keeps annotated running pods at podIP:<prometheus.io/port>, labelled by Knative service, namespace and pod', () => {
      // It waits for the whole --timeout (30 s by default); static targets are there at once.
      const r = promtool(['check', 'service-discovery', '--timeout=2s', 'prometheus.yml', 'kubernetes-pods'], dir)
      expect(r.status, ok(r)).toBe(0)
      const targets = (JSON.parse(r.stdout) as { labels: Record<string, string> }[]).map((t) => t.labels).filter((l) => Object.keys(l).length > 0)
      const byAddress = new Map(targets.map((l) => [l.__address__, l]))
      // Both of order's container ports become the same target, which Prometheus scrapes once.
      expect(targets.filter((l) => l.pod === 'order-00001-deployment-a')).toHaveLength(2)
      expect([...byAddress.keys()].sort()).toEqual(['10.1.0.5:8080', '[fd00::7]:8080'])
      expect(byAddress.get('10.1.0.5:8080')).toMatchObject({
        __metrics_path__: '/metrics',
        job: 'kubernetes-pods',
        namespace: 'shop',
        pod: 'order-00001-deployment-a',
        serving_knative_dev_service: 'order',
        serving_knative_dev_revision: 'order-00001',
      })
      expect(byAddress.get('[fd00::7]:8080')).toMatchObject({ serving_knative_dev_service: 'payment', pod: 'payment-00001-deployment-b' })
      expect(new Set(targets.map((l) => JSON.stringify(l))).size).toBe(2)
    })
  })
})

// ------------------------------------------------------------------------------- Grafana

describe('Grafana: provisioning and dashboard', () => {
  it('provisions the Prometheus datasource with uid prometheus, at the Prometheus Service', () => {
    const { datasources } = parse(read('grafana/datasource.yml')) as { datasources: Record<string, unknown>[] }
    expect(datasources).toHaveLength(1)
    expect(datasources[0]).toMatchObject({ type: 'prometheus', uid: 'prometheus', access: 'proxy', url: 'http://prometheus:9090' })
    const service = one('Service', 'prometheus')
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(9090)
  })

  it('loads dashboards from the directory the Deployment mounts them at', () => {
    const { providers } = parse(read('grafana/dashboards.yml')) as { providers: { type: string; options: { path: string } }[] }
    expect(providers).toHaveLength(1)
    expect(providers[0]!.type).toBe('file')
    const container = one('Deployment', 'grafana').spec.template.spec.containers[0]
    const mount = (volume: string) => container.volumeMounts.find((m: { name: string }) => m.name === volume)?.mountPath
    expect(mount('dashboards')).toBe(providers[0]!.options.path)
    expect(mount('datasources')).toBe('/etc/grafana/provisioning/datasources')
    expect(mount('dashboard-providers')).toBe('/etc/grafana/provisioning/dashboards')
  })

  it('has a dashboard whose panels all query Prometheus by uid, each target with an expression', () => {
    const d = dashboard()
    expect(d.uid).toBe('shop')
    const panels = queryPanels()
    expect(panels.length).toBeGreaterThanOrEqual(10)
    expect(new Set(allPanels(d.panels).map((p) => p.id)).size).toBe(allPanels(d.panels).length)
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: 'prometheus' })
      expect(p.targets?.length, p.title).toBeGreaterThan(0)
      for (const t of p.targets ?? []) {
        expect(t.expr?.trim(), p.title).toBeTruthy()
        expect(t.datasource?.uid ?? 'prometheus', p.title).toBe('prometheus')
      }
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24)
    }
    for (const v of d.templating.list) if (v.datasource) expect(v.datasource.uid, v.name).toBe('prometheus')
    // And nothing anywhere in the JSON names another datasource.
    const uids = [...read('grafana/shop-dashboard.json').matchAll(/"datasource":\s*\{[^}]*"uid":\s*"([^"]*)"/g)].map((m) => m[1])
    expect(new Set(uids)).toEqual(new Set(['prometheus']))
  })

  it('shows per function requests, 5xx ratio and p95 latency, orders, payments, events, dead letters and the outbox', () => {
    const text = queryPanels().map((p) => `${p.title}\n${(p.targets ?? []).map((t) => t.expr).join('\n')}`)
    const has = (re: RegExp) => expect(text.some((t) => re.test(t)), String(re)).toBe(true)
    has(/sum by \(serving_knative_dev_service\) \(rate\(http_requests_total/)
    has(/status=~"5\.\."[\s\S]*\/[\s\S]*http_requests_total/)
    has(/histogram_quantile\(0\.95, sum by \(serving_knative_dev_service, le\) \(rate\(http_request_duration_seconds_bucket/)
    has(/sum by \(status\) \(rate\(orders_total/)
    has(/sum by \(status\) \(rate\(payments_total/)
    has(/sum by \(serving_knative_dev_service, type, outcome\) \(rate\(events_received_total/)
    has(/sum by \(serving_knative_dev_service, type, outcome\) \(rate\(events_published_total/)
    has(/events_dead_lettered_total/)
    has(/max\(outbox_pending\)/)
    has(/max\(outbox_oldest_age_seconds\)/)
    has(/max\(orders_pending_oldest_age_seconds\)/)
  })

  it.skipIf(!hasTool('promtool'))('has queries that Prometheus parses (promtool check rules on them as recording rules)', () => {
    const dir = tempDir()
    const queries = dashboardQueries()
    const recording = { groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: withoutGrafanaVariables(q) })) }] }
    writeFileSync(join(dir, 'dashboard-queries.yml'), stringify(recording))
    const r = promtool(['check', 'rules', 'dashboard-queries.yml'], dir)
    expect(r.status, ok(r)).toBe(0)
    expect(r.stdout + r.stderr).toContain(`SUCCESS: ${queries.length} rules found`)
  })
})

// ------------------------------------------------------------------------------- metric names

describe('the metrics the alerts and the dashboard query', () => {
  const pool = testPool()
  let hasher: PasswordHasher
  /** Each function's /metrics text, from its real app. */
  const exported = new Map<string, string>()

  beforeAll(async () => {
    const keys = await testKeys()
    hasher = createPasswordHasher({ cost: 4 })
    // As shared/server.ts builds them: one registry per function, with Node's default metrics.
    const deps = () => ({ pool, log: quietLog, metrics: createMetrics() })
    const publish = async () => {}
    const product = productApp({ ...deps(), verify: keys.verify })
    const products = createProductClient({ baseUrl: 'http://product', fetch: fetchVia(product) })
    const apps = {
      auth: authApp({ ...deps(), hasher, signer: keys.signer, verify: keys.verify, jwks: keys.jwks as never }),
      product,
      cart: cartApp({ ...deps(), verify: keys.verify, products }),
      order: orderApp({ ...deps(), verify: keys.verify, products, publish }),
      payment: paymentApp({ ...deps(), verify: keys.verify, publish, successRate: 1, delayMs: 0 }),
      'dead-letter': deadLetterApp(deps()),
    }
    for (const [name, app] of Object.entries(apps)) {
      await app.request('/healthz') // a labelled sample as well, though # HELP lines suffice
      const res = await app.request('/metrics')
      expect(res.status, `${name} /metrics`).toBe(200)
      exported.set(name, await res.text())
    }
  })
  afterAll(() => hasher?.close())

  const exportedAnywhere = (name: string) => [...exported.values()].some((text) => isExported(text, name))
  const queried = (exprs: string[]) => new Set(exprs.flatMap((e) => [...metricNames(e)]))

  it('every function exports the HTTP and event metrics, and its own', () => {
    const common = ['http_requests_total', 'http_request_duration_seconds', 'events_received_total', 'events_published_total']
    const own: Record<string, string[]> = {
      order: ['outbox_pending', 'outbox_oldest_age_seconds', 'orders_pending_oldest_age_seconds', 'orders_total'],
      payment: ['payments_total'],
      'dead-letter': ['events_dead_lettered_total'],
    }
    expect([...exported.keys()].sort()).toEqual(['auth', 'cart', 'dead-letter', 'order', 'payment', 'product'])
    for (const [fn, text] of exported) {
      for (const name of [...common, ...(own[fn] ?? [])]) expect(isExported(text, name), `${fn} exports ${name}`).toBe(true)
    }
    expect(isExported(exported.get('order')!, 'http_request_duration_seconds_bucket')).toBe(true)
  })

  it('every metric the alert rules query is exported by a function', () => {
    const names = queried(rules().map((r) => r.expr))
    expect(names.size).toBeGreaterThanOrEqual(6)
    for (const name of names) expect(exportedAnywhere(name), `alerts.yml queries ${name}, which no function exports`).toBe(true)
  })

  it('every metric the dashboard queries is exported by a function', () => {
    const names = queried(dashboardQueries())
    expect(names.size).toBeGreaterThanOrEqual(9)
    for (const name of names) expect(exportedAnywhere(name), `shop-dashboard.json queries ${name}, which no function exports`).toBe(true)
  })

  it('the dashboard shows every domain metric of the contract', () => {
    const names = queried(dashboardQueries())
    for (const name of ['http_requests_total', 'http_request_duration_seconds_bucket', 'events_received_total', 'events_published_total', 'events_dead_lettered_total',
      'outbox_pending', 'outbox_oldest_age_seconds', 'orders_pending_oldest_age_seconds', 'orders_total', 'payments_total']) {
      expect(names.has(name), name).toBe(true)
    }
  })
})

// ------------------------------------------------------------------------------- manifests

describe('manifests', () => {
  const byKind = (kind: string) => manifests().filter((o) => o.kind === kind)

  it('select the pods they label, and Services reach a named container port', () => {
    for (const d of byKind('Deployment')) {
      const labels = d.spec.template.metadata.labels as Record<string, string>
      expect(labels['app.kubernetes.io/name'], d.metadata.name).toBe(d.metadata.name)
      expect(labels, d.metadata.name).toMatchObject(d.spec.selector.matchLabels)
      expect(d.metadata.labels?.['app.kubernetes.io/name']).toBe(d.metadata.name)
    }
    for (const s of byKind('Service')) {
      const d = one('Deployment', s.metadata.name)
      expect(d.spec.template.metadata.labels, s.metadata.name).toMatchObject(s.spec.selector)
      expect(s.spec.type ?? 'ClusterIP').toBe('ClusterIP')
      const ports = d.spec.template.spec.containers.flatMap((c: { ports: { name: string }[] }) => c.ports.map((p) => p.name))
      for (const p of s.spec.ports) expect(ports, s.metadata.name).toContain(p.targetPort)
    }
    expect(one('Service', 'prometheus').spec.ports[0].port).toBe(9090)
    expect(one('Service', 'grafana').spec.ports[0].port).toBe(3000)
  })

  it('let Prometheus read pods with its own ServiceAccount, keep 7 days on its volume and run as non-root', () => {
    const role = one('ClusterRole', 'shop-prometheus')
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }])
    const binding = one('ClusterRoleBinding', 'shop-prometheus')
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'shop-prometheus' })
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'shop' }])
    one('ServiceAccount', 'prometheus')
    one('PersistentVolumeClaim', 'prometheus-data')

    const pod = one('Deployment', 'prometheus').spec.template.spec
    expect(pod.serviceAccountName).toBe('prometheus')
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true })
    const [c] = pod.containers
    expect(c.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/)
    expect(c.args).toEqual(expect.arrayContaining(['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus', '--storage.tsdb.retention.time=7d']))
    expect(c.readinessProbe.httpGet.path).toBe('/-/ready')
    expect(c.resources.requests && c.resources.limits).toBeTruthy()
    const mounts = Object.fromEntries(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]))
    expect(mounts).toEqual({ config: '/etc/prometheus', data: '/prometheus' })
    const volumes = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]))
    expect(volumes.config.configMap.name).toBe('prometheus-config')
    expect(volumes.data.persistentVolumeClaim.claimName).toBe('prometheus-data')
  })

  it('give Grafana its admin password from the Secret grafana-admin, and run it as non-root', () => {
    const pod = one('Deployment', 'grafana').spec.template.spec
    const [c] = pod.containers
    expect(c.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/)
    const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]))
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toEqual({ name: 'GF_SECURITY_ADMIN_PASSWORD', valueFrom: { secretKeyRef: { name: 'grafana-admin', key: 'password' } } })
    for (const e of c.env) if (/PASSWORD/.test(e.name)) expect(e, e.name).not.toHaveProperty('value')
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true })
    expect(c.readinessProbe.httpGet.path).toBe('/api/health')
    expect(c.resources.requests && c.resources.limits).toBeTruthy()
  })

  it('set no namespace of their own (the parent kustomization sets shop)', () => {
    for (const o of manifests()) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined()
    expect(parse(read('kustomization.yaml'))).not.toHaveProperty('namespace')
    expect(parse(read('kustomization.yaml'))).not.toHaveProperty('commonLabels')
  })

  it.skipIf(!hasTool('kubectl'))('render with kubectl kustomize, the configuration files in hashed ConfigMaps that the Deployments mount', () => {
    const r = kubectl(['kustomize', here])
    expect(r.status, ok(r)).toBe(0)
    const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8s)
    const maps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name.replace(/-[a-z0-9]{10}$/, ''), o]))
    const files: Record<string, string[]> = {
      'prometheus-config': ['prometheus/prometheus.yml', 'prometheus/alerts.yml'],
      'grafana-datasources': ['grafana/datasource.yml'],
      'grafana-dashboard-providers': ['grafana/dashboards.yml'],
      'grafana-dashboards': ['grafana/shop-dashboard.json'],
    }
    expect([...maps.keys()].sort()).toEqual(Object.keys(files).sort())
    for (const [base, paths] of Object.entries(files)) {
      const map = maps.get(base)!
      expect(map.metadata.name, base).toMatch(new RegExp(`^${base}-[a-z0-9]{10}$`))
      expect(map.data, base).toEqual(Object.fromEntries(paths.map((p) => [p.split('/').pop()!, read(p)])))
      // kubectl apply keeps a copy of each object in an annotation of at most 256 KiB.
      expect(JSON.stringify(map.data).length, base).toBeLessThan(200 * 1024)
    }
    const mounted = objects
      .filter((o) => o.kind === 'Deployment')
      .flatMap((d) => d.spec.template.spec.volumes.filter((v: { configMap?: unknown }) => v.configMap).map((v: { configMap: { name: string } }) => v.configMap.name))
    expect(mounted.sort()).toEqual([...maps.values()].map((m) => m.metadata.name).sort())
  })
})
