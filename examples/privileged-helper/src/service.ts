/**
 * What the daemon serves, shared by both sides so requests and results are typed. A copy of this
 * file is all an app needs to know about the daemon besides its address and public key.
 */

/** What `status.get` answers: who the daemon is, and who it sees calling (from the kernel or token). */
export interface HelperStatus {
  /** Always `privileged-helper`. */
  service: string;
  /** The daemon's process id. */
  pid: number;
  /** The daemon's effective uid (Unix), null on Windows. */
  uid: number | null;
  /** Milliseconds since the daemon started. */
  uptimeMs: number;
  /** The caller as the OS and the handshake identify it. */
  caller: {
    /** Fingerprint of the caller's static key. */
    peerId: string;
    /** The roles the policy gave it. */
    roles: string[];
    /** Its uid (Unix, from SO_PEERCRED / getpeereid), else null. */
    uid: number | null;
    /** Its user SID (Windows, from its process token), else null. */
    sid: string | null;
    /** Its process id, as the OS reports it, else null. */
    pid: number | null;
  };
}

/** The daemon's methods. */
export interface HelperService {
  /** Role `app`: the daemon's status. */
  'status.get': () => HelperStatus;
  /** Role `admin`: stop the daemon cleanly (as SIGTERM would); answers before it stops. */
  'admin.shutdown': () => { stopping: true };
}

/** The methods' names, for the app's command line and the Electron bridge. */
export const HELPER_METHODS = [
  'status.get',
  'admin.shutdown',
] as const satisfies readonly (keyof HelperService)[];

/** A method name of the daemon. */
export type HelperMethod = (typeof HELPER_METHODS)[number];

/** Whether `name` is one of the daemon's methods (input from a command line or another process). */
export function isHelperMethod(name: unknown): name is HelperMethod {
  return typeof name === 'string' && (HELPER_METHODS as readonly string[]).includes(name);
}
