// A real OpenID provider for the portal's browser tests: node-oidc-provider (a certified
// implementation) with its development sign-in pages, where any login is accepted and is
// taken as the person's email. Started by tests/it/portal/browser.rs as
//
//   node provider.mjs PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET
//
// with its packages installed (`npm ci`) in $GATEHOUSE_OIDC_PROVIDER_DIR, outside the
// repository. It prints `ready ISSUER` once it listens.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, redirectUri, clientId, clientSecret] = process.argv.slice(2);
const modules = process.env.GATEHOUSE_OIDC_PROVIDER_DIR;
if (!modules || !clientSecret) {
  console.error('usage: GATEHOUSE_OIDC_PROVIDER_DIR=… node provider.mjs PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}
const entry = join(modules, 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  // Claims of the granted scopes go into the ID token, as most providers do.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  pkce: { required: () => true },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: id, email_verified: true, name: id }),
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['gatehouse-browser-tests-only'] },
});
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
