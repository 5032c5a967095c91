/**
 * @secure-ipc/config: declarative configuration (docs/configuration.md). One schema gives the
 * TypeScript type and the published JSON Schema; files are JSONC or TOML, and every problem is
 * reported at its line and column; profiles and policy tests are checked before anything applies.
 */

export { type ConfigChange, diffConfigs, reloadableSettings } from './diff.js';
export {
  DOCTOR_BASELINE_MAX_CERTIFICATE_DAYS,
  DOCTOR_CHECKS,
  DOCTOR_EXPIRY_WARNING_DAYS,
  DOCTOR_MAX_SCORE,
  type DoctorCheck,
  type DoctorFinding,
  type DoctorInput,
  type DoctorOptions,
  type DoctorReport,
  type DoctorSeverity,
  doctorConfig,
  doctorSeverity,
} from './doctor.js';
export {
  type DoctorAddressOptions,
  type DoctorAddressReport,
  type DoctorServerIdentity,
  type DoctorUnchecked,
  doctorAddress,
} from './doctor-address.js';
export { HANDBOOK_BEGIN, HANDBOOK_END, handbookSettings, withHandbookSettings } from './handbook.js';
export { CONFIG_SCHEMA_ID, jsonSchemaText } from './json-schema.js';
export {
  type ConfiguredServe,
  canonicalJson,
  configHash,
  type LoadConfigOptions,
  type LoadedConfigInfo,
  loadConfig,
  MAX_CONFIG_BYTES,
  readConfig,
  STRICT_MAX_CERTIFICATE_HOURS,
} from './load.js';
export { PROFILE_RULES, type ProfileName, type ProfileRule, profileRules } from './profiles.js';
export {
  type ConfigReload,
  type ConfigWatcher,
  type ConfigWatcherEvents,
  type WatchConfigOptions,
  watchConfig,
} from './reload.js';
export {
  CONFIG_VERSION,
  type Config,
  ConfigSchema,
  type EndpointConfig,
  type KeySourceConfig,
  type PolicyTestConfig,
} from './schema.js';
export {
  type ConfigFormat,
  formatOf,
  type ParsedSource,
  parseSource,
  type SourcePosition,
} from './source.js';
export {
  type ConfigProblem,
  type ConfigValidation,
  formatProblem,
  MAX_SCHEMA_PROBLEMS,
  policyOf,
  validateConfigText,
} from './validate.js';
