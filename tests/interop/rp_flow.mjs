// A relying party built on panva's openid-client, driven by tests/interop/test_openid_client.py.
//
// Usage: node rp_flow.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI [--tamper-id-token]
// (or IDP_ISSUER, IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URI in the environment).
//
// Protocol, one JSON object per line:
//   stdout  {"authorization_url": "..."}     the URL to open in a browser
//   stdin   the callback URL the browser was redirected to
//   stdout  {"ok": true, ...results}         or {"ok": false, "error": {...}} (exit status 1)
//
// --tamper-id-token corrupts the ID token's signature on its way back from the token endpoint,
// to prove that the client really verifies it against the provider's JWKS.
import { createInterface } from 'node:readline'
import * as client from 'openid-client'

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const [issuer, clientId, clientSecret, redirectUri] = [
  args[0] ?? process.env.IDP_ISSUER,
  args[1] ?? process.env.IDP_CLIENT_ID,
  args[2] ?? process.env.IDP_CLIENT_SECRET,
  args[3] ?? process.env.IDP_REDIRECT_URI,
]
const tamper = flags.includes('--tamper-id-token')

function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

function describe(err) {
  return {
    name: err?.name,
    code: err?.code,
    error: err?.error,
    message: err?.message,
    cause: err?.cause?.message ?? err?.cause?.error,
  }
}

async function readLine() {
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    lines.close()
    return line.trim()
  }
  throw new Error('stdin closed before the callback URL arrived')
}

// Every request the client makes, so the test can see that the JWKS was fetched.
const requests = []

async function recordingFetch(url, options) {
  requests.push(`${options?.method ?? 'GET'} ${new URL(url).pathname}`)
  const response = await fetch(url, options)
  if (!tamper || config === undefined || String(url) !== config.serverMetadata().token_endpoint) {
    return response
  }
  const body = await response.json()
  if (typeof body.id_token === 'string') {
    const [header, payload, signature] = body.id_token.split('.')
    // Change the first character: every bit of it is signature data (the last one is padding).
    const first = signature[0] === 'A' ? 'B' : 'A'
    body.id_token = [header, payload, first + signature.slice(1)].join('.')
  }
  return new Response(JSON.stringify(body), { status: response.status, headers: response.headers })
}

let config

async function main() {
  config = await client.discovery(
    new URL(issuer), clientId, { redirect_uris: [redirectUri] },
    client.ClientSecretBasic(clientSecret),
    { execute: [client.allowInsecureRequests], [client.customFetch]: recordingFetch },
  )
  // Token-endpoint ID tokens are trusted over TLS by default; make the client check signatures.
  client.enableNonRepudiationChecks(config)

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  emit({ authorization_url: authorizationUrl.href })

  const callback = new URL(await readLine())
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const reuse = await client.refreshTokenGrant(config, tokens.refresh_token).then(
    () => null, (err) => describe(err))
  // Reuse of a rotated token revokes the whole family, including the token it was rotated to.
  const family = await client.refreshTokenGrant(config, refreshed.refresh_token).then(
    () => null, (err) => describe(err))

  emit({
    ok: true,
    issuer: config.serverMetadata().issuer,
    id_token_claims: claims,
    userinfo,
    token_type: tokens.token_type,
    scope: tokens.scope,
    refresh_token_rotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshed_has_access_token: typeof refreshed.access_token === 'string',
    reuse_error: reuse,
    family_error: family,
    requests,
  })
}

main().catch((err) => {
  emit({ ok: false, error: describe(err), requests })
  process.exitCode = 1
})
