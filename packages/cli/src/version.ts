/** `secure-ipc --version`: the version of this package, read from its package.json. */
import { readFileSync } from 'node:fs';

// dist/src/version.js → the package root; package.json is in every install (npm always packs it).
const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** The version field of @secure-ipc/cli's package.json. */
export function cliVersion(): string {
  const { name, version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as {
    name?: unknown;
    version?: unknown;
  };
  if (name !== '@secure-ipc/cli' || typeof version !== 'string') {
    throw new Error(`cannot read the version of @secure-ipc/cli from ${PACKAGE_JSON.pathname}`);
  }
  return version;
}
