// ava's configuration for the Windows run of this package (`npm test`'s second half:
// `bash ../../tools/wine/run-ava.sh --config=ava.wine.config.mjs`, the Windows node under Wine).
// It runs only test/win/, which package.json's ava configuration (the Linux suite) leaves out.
export default {
  files: ['dist/test/win/**/*.test.js'],
  timeout: '2m',
  workerThreads: false,
};
