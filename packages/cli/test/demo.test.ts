import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const demo = fileURLToPath(new URL('../src/demo.js', import.meta.url));

test('the demo runs two processes over local:// and shows each step for real', async (t) => {
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [demo], { timeout: 60_000 }, (err, out) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out }),
    );
  });
  t.is(code, 0, stdout);
  const serverPid = /server process pid (\d+) listens on local:\/\//.exec(stdout)?.[1];
  t.truthy(serverPid);
  t.not(Number(serverPid), process.pid);
  t.regex(
    stdout,
    new RegExp(`channel up \\(Noise_XX, v4\\): server BLAKE2b:\\S+ \\(pid ${serverPid}, uid \\d+`),
  );
  t.regex(stdout, /accepted client BLAKE2b:\S+ \(pid \d+/);
  t.regex(stdout, /notes\.list\(\) → \["ship the secure channel","write the threat model"\]/);
  t.regex(stdout, /admin\.wipe\(\) → denied: SIPC_ERR_FORBIDDEN/);
  t.regex(stdout, /policy denied admin\.wipe/);
  t.regex(stdout, /closed the channel: .*SIPC_ERR_DECRYPT_FAILED/);
  t.regex(stdout, /the tampered note is not there/);
  t.notRegex(stdout, /this must never arrive"\]/);
  t.regex(stdout, /server stopped \(exit 0\)/);
});
