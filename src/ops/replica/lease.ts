// The lease: one object in the target saying which replicator writes it, renewed as it syncs.
// A second replicator is refused while the lease is fresh; one not renewed for leaseTimeoutMs
// may be taken over. Every upload is fenced: the lease is read first and must still be ours. It
// also records the last complete sync, so that a restore notices when that one is missing.
import { SQLITE_BUSY } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { builtin } from "../../runtime/builtin.js";
import { LEASE_NAME } from "./format.js";
import type { ReplicaTarget } from "./target.js";

export interface Lease {
  /** The replicator holding it (random per replicator); null once released. */
  owner: string | null;
  /** Who that is, for the refusal's message: host, process, source. */
  holder: string;
  /** ms since the epoch of the last renewal (the holder's clock). */
  heartbeat: number;
  /** The last complete sync and its chain hash (hex). */
  seq: number;
  chain: string;
  /** The holder's host name and process id, where it has them: a holder on this host that is gone frees the lease at once. */
  host?: string;
  pid?: number;
}

interface Proc {
  pid?: number;
  kill?: (pid: number, signal: number) => void;
}
const proc = () => (globalThis as { process?: Proc }).process;

/** This process's host name and id (Node, Deno, Bun), or nothing (browsers). */
export function processIdentity(): { host?: string; pid?: number } {
  const p = proc();
  const os = builtin<{ hostname(): string }>("node:os");
  try {
    return os && p?.pid !== undefined ? { host: os.hostname(), pid: p.pid } : {};
  } catch {
    return {}; // Deno without --allow-sys=hostname
  }
}

/** Whether the lease's holder is a process of this host that no longer runs. */
export function holderGone(l: Lease): boolean {
  const me = processIdentity();
  if (l.host === undefined || l.pid === undefined || me.host !== l.host || l.pid === me.pid) return false;
  try {
    proc()!.kill!(l.pid, 0);
    return false;
  } catch (e) {
    return (e as { code?: string })?.code === "ESRCH";
  }
}

export async function readLease(target: ReplicaTarget): Promise<Lease | null> {
  const bytes = await target.get(LEASE_NAME);
  if (bytes === null) return null;
  try {
    const l = JSON.parse(new TextDecoder().decode(bytes)) as Lease;
    if (typeof l.heartbeat !== "number" || typeof l.seq !== "number") return null;
    return l;
  } catch {
    return null; // a damaged lease is no lease; the chain protects the objects
  }
}

export function writeLease(target: ReplicaTarget, lease: Lease): Promise<void> {
  return target.put(LEASE_NAME, new TextEncoder().encode(JSON.stringify(lease)));
}

/** The refusal when another replicator holds the lease. */
export function leaseHeld(target: ReplicaTarget, l: Lease, now: number): SqliteError {
  const age = Math.max(0, Math.round((now - l.heartbeat) / 1000));
  return new SqliteError(`replicate: ${target.url} is replicated by another replicator (${l.holder}, lease renewed ${age} s ago)`, SQLITE_BUSY);
}
