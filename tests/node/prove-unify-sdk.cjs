// Prove's official server SDK from npm (@prove-identity/prove-api, pinned in scripts/install-tools)
// against the Prove simulator, Unify dialect: OAuth2 client credentials, unify -> unify-status
// (Authenticate() in between, through the simulator's control route), and the customer-supplied
// possession flow unify -> unify-status (possession_required) -> unify-bind; one refusal in
// Prove's error shape. Driven by tests/integration/prove_sdk.rs.
//
// stdin: {"tools": node-tools dir, "na": NA base URL, "eu": EU base URL, "control": the
// simulator's /control URL, "client_id", "client_secret"}. stdout: one JSON report.
//
// The SDK is pointed at the simulator with its own options: `serverURL` (the base every call is
// made under) and `security.tokenURL`. The token URL must be absolute: the SDK resolves the
// default `/token` against the host, dropping the simulator's path prefix.
//
// SDK 0.9.6 (the only version the npm registry serves) declares Unify's `success` as an object
// (`z.object({})`), while Prove documents a string (`"pending"`, `"true"` ...; the Go SDK and the
// TypeScript SDK's newer sources say string). Every Unify answer therefore fails the SDK's
// response validation on `success`, and only there: the SDK raises SDKValidationError with the
// parsed body as `rawValue`. This script records each such issue (the Rust test asserts it is
// the `success` field and nothing else), checks the body against the SDK's own schema with
// `success` as the documented string, and goes on with that body.
'use strict';

const { createRequire } = require('node:module');

async function main() {
  const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
  const req = createRequire(`${input.tools}/package.json`);
  const { Proveapi } = req('@prove-identity/prove-api');
  const components = req('@prove-identity/prove-api/models/components');
  const { SDKValidationError } = req('@prove-identity/prove-api/models/errors');
  const z = req('zod');
  const sdkVersion = req('@prove-identity/prove-api/package.json').version;

  const client = (base) =>
    new Proveapi({
      serverURL: base,
      security: {
        clientID: input.client_id,
        clientSecret: input.client_secret,
        tokenURL: `${base}/token`,
      },
    });

  const report = { sdk_version: sdkVersion, calls: [] };

  // One SDK call: its body as the SDK parsed it, or as the SDK's own schema with `success` a
  // string parses it after the SDK refused it.
  async function call(name, op, schema, key) {
    try {
      const res = await op();
      const body = res[key];
      report.calls.push({ name, sdk_parsed: true, body });
      return body;
    } catch (e) {
      if (!(e instanceof SDKValidationError)) {
        report.calls.push({ name, error: e.name, code: e.code ?? null, message: e.message });
        return null;
      }
      const issues = (e.cause && e.cause.issues) || [];
      const raw = e.rawValue && e.rawValue[key];
      const documented = schema.extend({ success: z.string() }).safeParse(raw);
      report.calls.push({
        name,
        sdk_parsed: false,
        issues: issues.map((i) => ({ path: i.path, expected: i.expected, received: i.received })),
        documented_shape: documented.success,
        body: raw,
      });
      return documented.success ? documented.data : null;
    }
  }

  async function authenticate(authToken, outcome) {
    const r = await fetch(`${input.control}/authenticate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth_token: authToken, outcome }),
    });
    if (!r.ok) throw new Error(`control/authenticate answered ${r.status}`);
  }

  const na = client(input.na);
  const eu = client(input.eu);

  // 1. Prove possession on mobile: Lorant Nerger (NA), the whole flow.
  const start = await call(
    'unify',
    () =>
      na.v3.v3UnifyRequest({
        possessionType: 'mobile',
        clientRequestId: 'sdk-req-1',
        clientCustomerId: 'sdk-customer-1',
        phoneNumber: '2001004014',
        allowOTPRetry: true,
      }),
    components.V3UnifyResponse$inboundSchema,
    'V3UnifyResponse',
  );
  const status = (sdk, correlationId, name) =>
    call(
      name,
      () => sdk.v3.v3UnifyStatusRequest({ correlationId, clientRequestId: 'sdk-req-1' }),
      components.V3UnifyStatusResponse$inboundSchema,
      'V3UnifyStatusResponse',
    );
  if (start) {
    await status(na, start.correlationId, 'unify-status (before Authenticate)');
    await authenticate(start.authToken, 'passed');
    await status(na, start.correlationId, 'unify-status (after Authenticate)');
  }

  // 2. Customer-supplied possession: Bertie Fremont (EU): possession_required, then the bind.
  const none = await call(
    'unify (none)',
    () =>
      eu.v3.v3UnifyRequest({
        possessionType: 'none',
        clientRequestId: 'sdk-req-2',
        phoneNumber: '+2001004025',
      }),
    components.V3UnifyResponse$inboundSchema,
    'V3UnifyResponse',
  );
  if (none) {
    await call(
      'unify-status (none)',
      () => eu.v3.v3UnifyStatusRequest({ correlationId: none.correlationId, clientRequestId: 'sdk-req-2' }),
      components.V3UnifyStatusResponse$inboundSchema,
      'V3UnifyStatusResponse',
    );
    await call(
      'unify-bind',
      () =>
        eu.v3.v3UnifyBindRequest({
          correlationId: none.correlationId,
          clientRequestId: 'sdk-req-2',
          phoneNumber: '+2001004025',
        }),
      components.V3UnifyBindResponse$inboundSchema,
      'V3UnifyBindResponse',
    );
  }

  // 3. A number that is no Unify test user: Prove's 400 {code, message}, as the SDK's ErrorT.
  await call(
    'unify (no test user)',
    () => na.v3.v3UnifyRequest({ possessionType: 'mobile', clientRequestId: 'sdk-req-3', phoneNumber: '2005550100' }),
    components.V3UnifyResponse$inboundSchema,
    'V3UnifyResponse',
  );

  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
