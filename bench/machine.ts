/**
 * @module
 * The machine a run measured: numbers from two machines are not comparable, ratios mostly are.
 */
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'

export type Machine = {
  cores: number
  cpuModel: string
  memoryGiB: number
  node: string
  kernel: string
  /** 1-minute load average when the run began: others' work on the machine shows here. */
  loadAtStart: number
}

export function describeMachine(): Machine {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    loadAtStart: Math.round(loadavg()[0]! * 100) / 100,
  }
}

export const machineLine = (m: Machine) =>
  `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel}, load ${m.loadAtStart} at start`
