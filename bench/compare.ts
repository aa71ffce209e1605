/**
 * @module
 * Contenders measured in turns: subject, baseline(s), subject, baseline(s), … for the given
 * number of rounds, each measurement kept, medians taken over rounds.
 */
import { alternation, median } from './stats.ts'

export type Runs<T> = Record<string, T[]>

export async function inTurns<T>(contenders: Record<string, () => Promise<T>>, rounds: number, say: (line: string) => void, describe?: (result: T) => string): Promise<Runs<T>> {
  const runs: Runs<T> = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]))
  for (const { round, contender } of alternation(Object.keys(contenders), rounds)) {
    const result = await contenders[contender]!()
    runs[contender]!.push(result)
    say(`  round ${round}/${rounds}  ${contender.padEnd(34)} ${describe ? describe(result) : ''}`)
  }
  return runs
}

/** The median over rounds of one number of each run. */
export const medianOf = <T>(runs: T[] | undefined, pick: (run: T) => number | undefined): number | undefined =>
  median((runs ?? []).map(pick).filter((v): v is number => v !== undefined))
