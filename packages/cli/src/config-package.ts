/**
 * @secure-ipc/config, imported when a command first needs it (`config`, `doctor`): its schema
 * library (typebox) costs about 0.6 s of CPU at import, measured on Node 20, against 0.35 s for
 * core and both transports, so every other command starts without it. Only its types are imported
 * statically.
 */
export const configPackage = () => import('@secure-ipc/config');
