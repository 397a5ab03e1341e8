// openid-client as a relying party of a distwit server, for
// tests/test_oidc_provider.py.
//
//   node rp.mjs ISSUER REDIRECT_URI
//
// Discovers ISSUER, registers itself (RFC 7591) with REDIRECT_URI, and
// prints one JSON line: {"authorization_url", "client_id", "state"}.  The
// test plays the browser (sign-in, consent) and writes the URL the
// provider redirected to back on one line of standard input; the script
// then checks the authorization response (state, and the RFC 9207 iss,
// which openid-client requires since the provider advertises it),
// exchanges the code with the PKCE verifier, validates the ID token
// (signature from the JWKS, iss, aud, exp, nonce) and fetches userinfo,
// and prints a second JSON line: {"id_token_claims", "userinfo",
// "token_type", "scope"}.  Any failure: a message on standard error and
// exit status 1.
//
// Plain http is allowed: the provider listens on loopback for the tests.

import { createInterface } from "node:readline";
import * as client from "openid-client";

async function readLine() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line.trim();
  }
  throw new Error("standard input closed before the callback URL came");
}

async function main() {
  const [issuer, redirectUri] = process.argv.slice(2);
  if (!issuer || !redirectUri) {
    throw new Error("usage: node rp.mjs ISSUER REDIRECT_URI");
  }
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      client_name: "openid-client interop test",
      redirect_uris: [redirectUri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_post",
      id_token_signed_response_alg: "RS256",
    },
    undefined, // client_secret_post with the secret the provider issued
    { execute: [client.allowInsecureRequests], timeout: 30 },
  );
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  console.log(JSON.stringify({
    authorization_url: authorizationUrl.href,
    client_id: config.clientMetadata().client_id,
    state,
  }));

  const callback = new URL(await readLine());
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  console.log(JSON.stringify({
    id_token_claims: claims,
    userinfo,
    token_type: tokens.token_type,
    scope: tokens.scope ?? null,
  }));
}

main().then(
  () => process.exit(0),
  (error) => {
    const details = { name: error.name, code: error.code, message: error.message };
    if (error.cause !== undefined) details.cause = String(error.cause?.message ?? error.cause);
    console.error("rp.mjs: " + JSON.stringify(details));
    process.exit(1);
  },
);
