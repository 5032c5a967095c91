/** The published JSON Schema of the configuration (schema/secure-ipc.config.schema.json). */
import { ConfigSchema } from './schema.js';

/** The schema's `$id`. */
export const CONFIG_SCHEMA_ID = 'https://secure-ipc.dev/schema/config/v1.json';

/** The JSON Schema text, as published: draft 2020-12, 2-space indented, ending in a newline. */
export function jsonSchemaText(): string {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: CONFIG_SCHEMA_ID,
    ...ConfigSchema,
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
