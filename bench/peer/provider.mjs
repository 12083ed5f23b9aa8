// node-oidc-provider (pinned in package.json) configured like idp, as the peer `make bench-peer` measures.
// Usage: node provider.mjs PORT CLIENT_SECRET  (in-memory adapter; RS256 keys made at start-up)
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const [port, secret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const API = 'https://api.example.com';
const REDIRECT_URI = 'https://rp.example/cb';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    // client_credentials for one API, as idp's `--audience`: RFC 9068 JWT access tokens, RS256.
    { client_id: 'bench-m2m', client_secret: secret, grant_types: ['client_credentials'],
      response_types: [], redirect_uris: [] },
    // The code flow with PKCE (required by default); its opaque access token calls /me.
    { client_id: 'bench-web', client_secret: secret, grant_types: ['authorization_code'],
      response_types: ['code'], redirect_uris: [REDIRECT_URI] },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [secret] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Any login name is an account (devInteractions takes no password), with idp's bench user's claims.
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, email: `${sub}@example.com`, email_verified: true, name: 'Bench User' }),
  }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== API) throw new errors.InvalidTarget();
        return { scope: 'api', audience: API, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider ${issuer} listening`));
