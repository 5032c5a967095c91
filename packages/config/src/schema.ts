/**
 * The configuration schema (docs/configuration.md): one TypeBox source for the TypeScript type
 * (`Config`) and the published JSON Schema (schema/secure-ipc.config.schema.json). Every setting
 * carries its description and two annotations the handbook is generated from: `x-reloadable`
 * (applied on reload, or only at start) and `x-security` (what it protects, what weakening it
 * costs).
 */
import { type Static, type TSchema, Type } from 'typebox';

/** The schema's version: the `version` a configuration file must say. */
export const CONFIG_VERSION = 1;

interface Meta {
  /** Applied by a reload (true) or only at start (false). */
  readonly reloadable: boolean;
  /** Its security impact, one sentence. */
  readonly security: string;
  /** How it differs by OS, when it does. */
  readonly os?: string;
}

/** Annotate a setting with its handbook facts (kept as `x-` keywords in the JSON Schema). */
function setting<T extends TSchema>(schema: T, meta: Meta): T {
  return {
    ...schema,
    'x-reloadable': meta.reloadable,
    'x-security': meta.security,
    ...(meta.os === undefined ? {} : { 'x-os': meta.os }),
  } as T;
}

const strict = { additionalProperties: false } as const;

const PublicKey = Type.String({
  pattern: '^[A-Za-z0-9+/]{43}=$',
  description: 'A 32-byte public key in standard base64 (44 characters), as `secure-ipc pubkey` prints it',
});

/** A file path setting (relative paths are relative to the configuration file). */
const Path = (description: string) =>
  Type.String({ minLength: 1, description: `${description} (a path, relative to the configuration file)` });

const Positive = (description: string, max = 2 ** 31 - 1) =>
  Type.Integer({ minimum: 1, maximum: max, description });

/** Where a secret key comes from: the OS keystore, an encrypted key file, or (baseline only) a plain key file. */
const KeySource = Type.Object(
  {
    keystore: Type.Optional(
      Type.Object(
        {
          account: Type.String({ minLength: 1, description: 'The keystore account the key is stored under' }),
          service: Type.Optional(
            Type.String({ minLength: 1, description: 'The keystore service (default `secure-ipc`)' }),
          ),
        },
        { ...strict, description: 'The OS keystore (libsecret, Keychain, Credential Manager)' },
      ),
    ),
    encryptedFile: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A passphrase-encrypted key file (`secure-ipc keygen --encrypt --out FILE`)',
      }),
    ),
    passphraseEnv: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'The environment variable holding the passphrase of `encryptedFile`',
      }),
    ),
    passphraseFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "A file holding the passphrase of `encryptedFile` (without one trailing newline): a regular file of at most 4 KiB, owned by the endpoint's user or root, no group or other access (refused otherwise)",
      }),
    ),
    file: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A plain secret key file, mode 0600 (refused by the strict profile)',
      }),
    ),
  },
  {
    ...strict,
    description:
      'Exactly one of `keystore`, `encryptedFile` (with `passphraseEnv` or `passphraseFile`) or `file`; a secret key is never written inline',
  },
);

const Grant = Type.Object(
  {
    call: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Methods or patterns (`files.*`)' }),
    ),
    publish: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Topics or patterns it may publish' }),
    ),
    subscribe: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Topics or patterns it may subscribe to' }),
    ),
    own: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Bus names or patterns it may own on a @secure-ipc/bus broker (docs/bus.md)',
      }),
    ),
  },
  { ...strict, description: 'What a role may do (deny by default)' },
);

const Endpoint = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'The endpoint’s name' }),
    listen: setting(
      Type.String({
        minLength: 1,
        description:
          'The address to listen on: `unix://PATH`, `local://APP`, `local://system/APP`, `systemd:NAME`, `pipe://NAME`, `tcp://127.0.0.1:PORT`',
      }),
      {
        reloadable: false,
        security: 'Where peers reach the service; `local://` and `unix://` are owner-only by default.',
      },
    ),
    socketMode: Type.Optional(
      setting(
        Type.Union([Type.Literal('0600'), Type.Literal('0660'), Type.Literal('0666')], {
          description: 'The socket file’s mode (default 0600)',
        }),
        {
          reloadable: false,
          security:
            'Who may connect at the OS level; 0660 and 0666 widen it to a group or everyone (the handshake still authenticates).',
          os: 'Unix only',
        },
      ),
    ),
    socketGroup: Type.Optional(
      setting(
        Type.Integer({ minimum: 0, description: 'The socket file’s group (a gid), with socketMode 0660' }),
        {
          reloadable: false,
          security: 'The group that may connect at the OS level.',
          os: 'Unix only',
        },
      ),
    ),
    allowUids: Type.Optional(
      setting(
        Type.Array(Type.Integer({ minimum: 0 }), {
          description: 'Peer uids accepted (default: this process’s uid only)',
        }),
        {
          reloadable: false,
          security: 'Checked from the kernel (SO_PEERCRED) before the handshake.',
          os: 'Unix only',
        },
      ),
    ),
    allowGids: Type.Optional(
      setting(Type.Array(Type.Integer({ minimum: 0 }), { description: 'Peer gids accepted' }), {
        reloadable: false,
        security: 'Checked from the kernel before the handshake.',
        os: 'Unix only',
      }),
    ),
    allowSids: Type.Optional(
      setting(
        Type.Array(Type.String({ minLength: 1 }), {
          description: 'Peer SIDs (or well-known names) accepted (default: this user only)',
        }),
        {
          reloadable: false,
          security: 'The named pipe’s DACL and the client’s token, before the handshake.',
          os: 'Windows only',
        },
      ),
    ),
    allowRemote: Type.Optional(
      setting(
        Type.Boolean({ description: 'Let a `tcp://` endpoint bind a non-loopback address (default false)' }),
        {
          reloadable: false,
          security: 'Exposes the endpoint to the network; refused by the strict profile.',
          os: 'TCP only',
        },
      ),
    ),
  },
  { ...strict, description: 'One listening endpoint' },
);

const Limits = Type.Object(
  {
    maxMessageSize: Type.Optional(
      setting(Positive('Largest message in bytes (default 16 MiB)'), {
        reloadable: false,
        security: 'Bounds the memory one message can take.',
      }),
    ),
    maxIncoming: Type.Optional(
      setting(Positive('Requests of one peer run at once (default 64)'), {
        reloadable: false,
        security: 'Bounds one peer’s share of the handlers.',
      }),
    ),
    maxInFlight: Type.Optional(
      setting(Positive('Requests of all peers run at once'), {
        reloadable: false,
        security: 'Bounds the server’s total work.',
      }),
    ),
    maxQueuedReplyBytes: Type.Optional(
      setting(Positive('Answer bytes queued for one peer before its reads pause (default 8 MiB)'), {
        reloadable: false,
        security: 'A peer that does not read cannot grow the server’s memory.',
      }),
    ),
    maxQueuedEventBytes: Type.Optional(
      setting(Positive('Event bytes queued for one subscriber'), {
        reloadable: false,
        security: 'A slow subscriber cannot grow the server’s memory.',
      }),
    ),
    maxConnections: Type.Optional(
      setting(Positive('Live channels at once'), { reloadable: false, security: 'Connection slots.' }),
    ),
    maxConnectionsPerIdentity: Type.Optional(
      setting(Positive('Live channels of one OS identity'), {
        reloadable: false,
        security: 'One user cannot take every slot.',
      }),
    ),
    maxConnectionsPerKey: Type.Optional(
      setting(Positive('Live channels of one static key'), {
        reloadable: false,
        security: 'One peer key cannot take every slot.',
      }),
    ),
    maxPendingHandshakes: Type.Optional(
      setting(Positive('Handshakes in progress'), {
        reloadable: false,
        security: 'Unauthenticated peers’ share.',
      }),
    ),
    maxPendingHandshakesPerIdentity: Type.Optional(
      setting(Positive('Handshakes in progress of one OS identity'), {
        reloadable: false,
        security: 'One user cannot hold every handshake slot.',
      }),
    ),
    handshakeTimeoutMs: Type.Optional(
      setting(Positive('Most milliseconds a handshake takes'), {
        reloadable: false,
        security: 'A silent peer gives its slot back.',
      }),
    ),
    closeTimeoutMs: Type.Optional(
      setting(Positive('Most milliseconds a graceful close takes (default 5,000)'), {
        reloadable: false,
        security: 'A peer cannot hold a close open.',
      }),
    ),
    drainMs: Type.Optional(
      setting(Positive('Most milliseconds the server drains on close'), {
        reloadable: false,
        security: 'Bounds shutdown.',
      }),
    ),
  },
  { ...strict, description: 'Resource limits (every default is in docs/limits.md)' },
);

const Audit = Type.Object(
  {
    dir: setting(Path('The audit log directory'), {
      reloadable: false,
      security: 'The log directory (0700, owner only).',
    }),
    origin: Type.String({
      minLength: 1,
      pattern: '^[^\\s+]+$',
      description: 'The log’s origin, e.g. `example.com/app/audit`',
    }),
    hashKeyFile: Type.Optional(
      setting(Path('The file of the key of the calls’ message hashes (`secure-ipc audit hash`)'), {
        reloadable: false,
        security: 'The 32-byte key of the calls’ keyed hashes; keep it apart from the log.',
      }),
    ),
    required: Type.Optional(
      setting(Type.Boolean({ description: 'Fail closed: refuse what cannot be audited (default false)' }), {
        reloadable: false,
        security: 'Nothing runs unaudited once an append fails (required by the strict profile).',
      }),
    ),
    checkpointEvery: Type.Optional(Positive('Records per checkpoint (default 256)')),
    checkpointIntervalMs: Type.Optional(Positive('Milliseconds between checkpoints (default 60,000)')),
    epochPeriodMs: Type.Optional(Positive('Rotate the signing key this often', Number.MAX_SAFE_INTEGER)),
  },
  { ...strict, description: 'The tamper-evident audit log (docs/audit.md)' },
);

const PolicyTest = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'What the test checks' })),
    peer: Type.Optional(PublicKey),
    roles: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Roles the channel carries (from a certificate)',
      }),
    ),
    call: Type.Optional(Type.String({ minLength: 1 })),
    publish: Type.Optional(Type.String({ minLength: 1 })),
    subscribe: Type.Optional(Type.String({ minLength: 1 })),
    own: Type.Optional(Type.String({ minLength: 1 })),
    expect: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  },
  { ...strict, description: 'One policy test: exactly one of call, publish, subscribe, own' },
);

/** The whole configuration file. */
export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(
      Type.String({ description: 'The JSON Schema this file follows (editors read it)' }),
    ),
    version: Type.Literal(CONFIG_VERSION, { description: 'The configuration format version (1)' }),
    profile: Type.Optional(
      setting(
        Type.Union([Type.Literal('baseline'), Type.Literal('strict')], {
          description: 'The hardening profile (default baseline)',
        }),
        {
          reloadable: false,
          security: 'The rules every endpoint is checked against, on every OS.',
        },
      ),
    ),
    weakens: Type.Optional(
      setting(
        Type.Array(
          Type.Object(
            {
              rule: Type.String({
                minLength: 1,
                description: 'The profile rule weakened (e.g. `strict.no-wildcard-call`)',
              }),
              reason: Type.String({ minLength: 1, description: 'Why' }),
            },
            strict,
          ),
          { description: 'Profile rules this configuration deliberately weakens, each with its reason' },
        ),
        {
          reloadable: true,
          security:
            'Each entry lifts one profile rule; checked with the rest of the file (a reload that drops one while what it allowed stays in force until a restart is refused).',
        },
      ),
    ),
    identity: Type.Object(
      {
        key: setting(KeySource, {
          reloadable: true,
          security: 'The endpoint’s static key; a reload rotates it for new handshakes.',
        }),
        certificate: Type.Optional(
          setting(Path('The certificate this endpoint presents (`secure-ipc cert issue`)'), {
            reloadable: true,
            security: 'The certificate presented in the handshake; a reload swaps it for new handshakes.',
          }),
        ),
      },
      { ...strict, description: 'Who this endpoint is' },
    ),
    trust: Type.Object(
      {
        keys: Type.Optional(
          setting(Type.Array(PublicKey, { description: 'Pinned peer keys' }), {
            reloadable: true,
            security: 'Who may complete a handshake.',
          }),
        ),
        authorities: Type.Optional(
          setting(
            Type.Array(PublicKey, {
              description: 'Certificate authorities whose certificates peers present',
            }),
            {
              reloadable: true,
              security: 'Who may complete a handshake, by certificate.',
            },
          ),
        ),
        revocations: Type.Optional(
          setting(Path('The revocation list (`secure-ipc revoke`)'), {
            reloadable: false,
            security:
              'The revocation list; its contents are watched and applied as they change (a revoked peer is refused and cut), its path takes a restart.',
          }),
        ),
      },
      { ...strict, description: 'Whom this endpoint trusts (at least one key or authority)' },
    ),
    policy: Type.Object(
      {
        roles: setting(
          Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), Grant, {
            description: 'Role name → grant',
          }),
          {
            reloadable: true,
            security: 'What each role may do; deny by default.',
          },
        ),
        peers: Type.Optional(
          setting(
            Type.Array(
              Type.Object(
                {
                  key: PublicKey,
                  roles: Type.Array(Type.String({ minLength: 1 }), {
                    description: 'Role names of policy.roles',
                  }),
                },
                { ...strict, description: 'Roles given to a peer key' },
              ),
              { description: 'Roles given to peers by their static key' },
            ),
            {
              reloadable: true,
              security: 'Who has which roles; a reload gives every live peer its roles again.',
            },
          ),
        ),
        defaultRoles: Type.Optional(
          setting(
            Type.Array(Type.String({ minLength: 1 }), { description: 'Roles every authenticated peer has' }),
            {
              reloadable: true,
              security: 'Granted to everyone trusted; refused by the strict profile.',
            },
          ),
        ),
      },
      { ...strict, description: 'The authorization policy (D-Bus style: deny everything, then grant)' },
    ),
    endpoints: Type.Array(Endpoint, { minItems: 1, description: 'The endpoints to listen on' }),
    limits: Type.Optional(Limits),
    resilience: Type.Optional(
      Type.Object(
        {
          eventOverflow: Type.Optional(
            Type.Union([Type.Literal('drop'), Type.Literal('disconnect')], {
              description: 'What a full subscriber queue does (default drop)',
            }),
          ),
        },
        { ...strict, description: 'Resilience settings' },
      ),
    ),
    outbox: Type.Optional(
      Type.Object(
        {
          dir: setting(Path('The outbox directory'), {
            reloadable: false,
            security: 'The outbox directory (0700).',
          }),
          key: setting(KeySource, {
            reloadable: false,
            security: 'The master key that encrypts the journal at rest.',
          }),
        },
        { ...strict, description: 'A client’s durable outbox (docs/outbox.md)' },
      ),
    ),
    telemetry: Type.Optional(
      Type.Object(
        {
          log: Type.Optional(
            setting(
              Type.Union(
                [
                  Type.Literal('none'),
                  Type.Literal('error'),
                  Type.Literal('warn'),
                  Type.Literal('info'),
                  Type.Literal('debug'),
                ],
                {
                  description: 'JSON log lines on stderr from this level (default none)',
                },
              ),
              { reloadable: false, security: 'Lines never hold a payload or a key.' },
            ),
          ),
        },
        { ...strict, description: 'Telemetry' },
      ),
    ),
    audit: Type.Optional(Audit),
    tests: Type.Optional(
      setting(
        Type.Array(PolicyTest, {
          description: 'Policy tests, run by `config validate` and before every apply',
        }),
        {
          reloadable: true,
          security: 'A failing test refuses the file, at start and at every reload.',
        },
      ),
    ),
  },
  {
    ...strict,
    title: 'secure-ipc configuration',
    description: 'A secure-ipc endpoint configuration (docs/configuration.md)',
  },
);

/** A configuration file's content, as the schema types it. */
export type Config = Static<typeof ConfigSchema>;
/** One endpoint of a configuration. */
export type EndpointConfig = Config['endpoints'][number];
/** A key source of a configuration (`identity.key`, `outbox.key`). */
export type KeySourceConfig = Config['identity']['key'];
/** One policy test of a configuration. */
export type PolicyTestConfig = NonNullable<Config['tests']>[number];
