// oidc-provider as a home server that distwit has never met, for
// tests/test_oidc_rp.py: open dynamic registration, PKCE required for every
// client, one account, a login and consent form of our own (no
// devInteractions), and the WebFinger answer distwit's relying party starts
// from.  Listens on 127.0.0.1, on a port the system chooses, and prints
// "listening <issuer>" once ready.
//
// usage: node provider.mjs <handle> <password>

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const [handle, password] = process.argv.slice(2);
if (!handle || !password) {
  console.error('usage: node provider.mjs <handle> <password>');
  process.exit(2);
}
const accountId = handle.toLowerCase();

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (res, title, body) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>${escape(title)}</title><h1>${escape(title)}</h1>${body}`);
};

const form = async (req) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
};

let provider;
let issuer;

async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return page(res, 'Sign in', `<form method="post" action="/interaction/${uid}/login">
        <input name="login"> <input name="password" type="password">
        <button type="submit">Sign in</button></form>`);
    }
    return page(res, `Let ${details.params.client_id} know who you are?`,
      `<form method="post" action="/interaction/${uid}/confirm">
        <button type="submit">Approve</button></form>`);
  }
  if (action === 'login') {
    const fields = await form(req);
    if ((fields.get('login') || '').toLowerCase() !== accountId
        || fields.get('password') !== password) {
      return page(res, 'Wrong handle or password', '');
    }
    return provider.interactionFinished(req, res, { login: { accountId } },
      { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    await form(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } },
      { mergeWithLastSubmission: true });
  }
  res.writeHead(404).end();
}

function webfinger(res, url) {
  // The shim distwit's WebFinger would be: acct:handle@host:port names the
  // issuer, for the one account.
  const resource = url.searchParams.get('resource') || '';
  const expected = `acct:${accountId}@${new URL(issuer).host}`;
  if (resource.toLowerCase() !== expected) {
    res.writeHead(404, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ error: 'no such account' }));
  }
  res.writeHead(200, { 'content-type': 'application/jrd+json' });
  return res.end(JSON.stringify({
    subject: resource,
    links: [{ rel: 'http://openid.net/specs/connect/1.0/issuer', href: issuer }],
  }));
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/.well-known/webfinger') return webfinger(res, url);
  if (url.pathname.startsWith('/interaction/')) {
    return interaction(req, res, url).catch((err) => {
      console.error(err);
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  }
  return provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-1', use: 'sig', alg: 'RS256' };
  provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      registration: { enabled: true },
      devInteractions: { enabled: false },
    },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'profile'] },
    // preferred_username in the ID token itself, where the relying party
    // reads it.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      if (id !== accountId) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: handle, name: `${handle} (oidc-provider)`, profile: `${issuer}/${handle}` };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  console.log(`listening ${issuer}`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
