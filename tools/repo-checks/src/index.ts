/**
 * @secure-ipc/repo-checks (private): checks that read the whole repository, run by `npm test`.
 * Today one: nothing tracked refers to a path outside the repository (`scanRepository`).
 *
 * @packageDocumentation
 */
export {
  formatFindings,
  type OutsideFinding,
  type OutsideRule,
  type RepositoryView,
  scanText,
} from './outside-paths.js';
export { generatedNames, listedFiles, repositoryView, scannedFiles, scanRepository } from './repository.js';
