/**
 * The unprivileged app, on the command line: connect to the daemon and call its methods.
 *
 *   node dist/src/app.js APP.json [METHOD ...]      (METHOD: status.get (default), admin.shutdown)
 *
 * It prints one JSON line per step: `{"method":"status.get","result":{...}}`, or with `"error"` (the
 * typed error's code, e.g. SIPC_ERR_FORBIDDEN for a method its key was not granted) and `"message"`;
 * a failed connection is `{"connect":false,"error":...}`. Exit code 0 when every call succeeded,
 * 1 when one failed or the connection did, 2 for a bad command line or config.
 */
import { readAppConfig } from './config.js';
import { callHelper, connectHelper, failure, type HelperClient } from './helper-client.js';
import { HELPER_METHODS, type HelperMethod, isHelperMethod } from './service.js';

const print = (line: object) => console.log(JSON.stringify(line));

async function main(argv: string[]): Promise<number> {
  const [configPath, ...names] = argv;
  const methods = names.length > 0 ? names : ['status.get'];
  const unknown = methods.find((m) => !isHelperMethod(m));
  if (configPath === undefined || unknown !== undefined) {
    console.error(`usage: node app.js APP.json [${HELPER_METHODS.join(' | ')} ...]`);
    return 2;
  }
  let config: Awaited<ReturnType<typeof readAppConfig>>;
  try {
    config = await readAppConfig(configPath);
  } catch (err) {
    print({ config: false, ...failure(err) });
    return 2;
  }
  let client: HelperClient;
  try {
    client = await connectHelper(config);
  } catch (err) {
    print({ connect: false, ...failure(err) });
    return 1;
  }
  let failed = false;
  for (const method of methods as HelperMethod[]) {
    const outcome = await callHelper(client, method);
    print(outcome);
    failed ||= 'error' in outcome;
  }
  await client.close();
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
