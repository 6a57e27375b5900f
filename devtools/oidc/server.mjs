// A real OpenID Provider (npm oidc-provider) for onyxia-py's integration tests.
//
// Usage: node server.mjs CONFIG.json
// The config file holds {issuer, port, jwks, clients, users, ttl, audience}; see
// devtools/localoidc.py, which writes it. Everything stays in memory (sessions, grants, tokens),
// so a restart forgets them. Listens on 127.0.0.1 only, plain HTTP.
//
// Login is a tiny form of our own (fields `login` and `password`; the password is checked);
// consent is granted automatically for whatever was requested. The code-flow access token is a
// JWT (RS256, aud = config.audience) that also carries preferred_username, email,
// email_verified, groups and roles.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ttl = {
  AccessToken: 300,
  IdToken: 300,
  RefreshToken: 3600,
  Session: 3600,
  Grant: 3600,
  Interaction: 600,
  AuthorizationCode: 60,
  ...(config.ttl || {}),
};
const audience = config.audience || 'onyxia';
const users = config.users || [];
const CLAIM_NAMES = ['preferred_username', 'name', 'email', 'email_verified', 'groups', 'roles'];
const TOKEN_CLAIMS = ['preferred_username', 'email', 'email_verified', 'groups', 'roles'];

const userBySub = new Map(users.map((u) => [u.sub, u]));

function findUserByLogin(login) {
  return users.find((u) => u.preferred_username === login || u.sub === login);
}

function userClaims(user) {
  const claims = { sub: user.sub };
  for (const name of CLAIM_NAMES) {
    if (user[name] !== undefined) claims[name] = user[name];
  }
  return claims;
}

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, clientId, error, login) {
  const errorHtml = error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : '';
  return page('Sign-in', `${errorHtml}
<p>Sign in to ${escapeHtml(clientId)}</p>
<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Username <input type="text" name="login" id="login" value="${escapeHtml(login || '')}" autofocus></label>
  <label>Password <input type="password" name="password" id="password"></label>
  <button type="submit" id="submit">Sign in</button>
</form>
<form id="abort-form" method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit" id="abort">Cancel</button>
</form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function resourceServerInfo() {
  return {
    scope: 'openid profile email groups roles offline_access',
    audience,
    accessTokenTTL: ttl.AccessToken,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

const defaultResourceIndicator = /^[a-z][a-z0-9+.-]*:/i.test(audience) ? audience : `urn:${audience}`;

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    roles: ['roles'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'roles'],
  conformIdTokenClaims: false,
  async findAccount(ctx, sub) {
    const user = userBySub.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return userClaims(user);
      },
    };
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    // Access tokens are DPoP-bound when the token request carries a proof (as the Onyxia web's
    // are); without one they stay bearer tokens.
    dPoP: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // Confirm automatically: the form posts logout=yes (a browser submits it by script,
        // an HTTP client posts the form itself).
        const autoForm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = page('Sign-out', `${autoForm}
<button type="submit" form="op.logoutForm" id="logout">Sign out</button>
<script>document.forms[0].submit()</script>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || defaultResourceIndicator,
      useGrantedResource: async () => true,
      getResourceServerInfo: resourceServerInfo,
    },
  },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: true,
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    const user = userBySub.get(token.accountId);
    if (!user) return undefined;
    const claims = {};
    for (const name of TOKEN_CLAIMS) {
      if (user[name] !== undefined) claims[name] = user[name];
    }
    return claims;
  },
  ttl,
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([k, v]) => `<pre class="${escapeHtml(k)}"><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</pre>`)
      .join(''));
  },
});

// One log line per request.
provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    await next();
  } finally {
    const path = ctx.path;
    console.log(`${new Date().toISOString()} ${ctx.method} ${path} ${ctx.status} ${Date.now() - started}ms`);
  }
});

// Test control: the harness changes or removes an account while the provider runs (a role taken
// away, an account deleted), as an administrator would at a real provider. Guarded by a per-run
// token from the config file.
provider.use(async (ctx, next) => {
  const match = /^\/_control\/users\/([^/]+)$/.exec(ctx.path);
  if (!match) return next();
  if (!config.control_token || ctx.get('authorization') !== `Bearer ${config.control_token}`) {
    ctx.status = 401;
    return undefined;
  }
  const sub = decodeURIComponent(match[1]);
  const index = users.findIndex((u) => u.sub === sub);
  if (ctx.method === 'DELETE') {
    if (index >= 0) users.splice(index, 1);
    userBySub.delete(sub);
    ctx.status = 204;
    return undefined;
  }
  if (ctx.method === 'PUT') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const user = { ...JSON.parse(Buffer.concat(chunks).toString('utf8')), sub };
    if (index >= 0) users[index] = user;
    else users.push(user);
    userBySub.set(sub, user);
    ctx.status = 204;
    return undefined;
  }
  ctx.status = 405;
  return undefined;
});

// Our own interactions: a login form that checks the password, consent granted automatically.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(ctx.path);
  if (!match) return next();
  const [, , action] = match;
  ctx.set('cache-control', 'no-store');

  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error">${escapeHtml(err.message)}</p>`);
    return undefined;
  }
  const { uid, prompt, params, session } = details;

  if (action === 'abort' && ctx.method === 'POST') {
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return undefined;
  }

  if (action === 'login' && ctx.method === 'POST') {
    if (prompt.name !== 'login') {
      ctx.status = 400;
      ctx.body = page('Error', '<p class="error">no login pending</p>');
      return undefined;
    }
    const form = await readForm(ctx.req);
    const login = form.get('login') || '';
    const user = findUserByLogin(login);
    if (!user || user.password !== (form.get('password') || '')) {
      ctx.status = 200;
      ctx.type = 'html';
      ctx.body = loginPage(uid, params.client_id, 'Invalid username or password.', login);
      return undefined;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: user.sub },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return undefined;
  }

  if (action || ctx.method !== 'GET') {
    ctx.status = 405;
    return undefined;
  }

  if (prompt.name === 'login') {
    ctx.type = 'html';
    ctx.body = loginPage(uid, params.client_id, undefined, params.login_hint);
    return undefined;
  }

  if (prompt.name === 'consent') {
    const { details: missing } = prompt;
    let grant;
    if (details.grantId) {
      grant = await provider.Grant.find(details.grantId);
    } else {
      grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    }
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      consent: { grantId },
    }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
    return undefined;
  }

  ctx.status = 501;
  ctx.body = page('Error', `<p class="error">prompt ${escapeHtml(prompt.name)} not implemented</p>`);
  return undefined;
});

// Validate every client now (oidc-provider does it lazily) so a bad config fails at start.
for (const client of config.clients) {
  try {
    if (!(await provider.Client.find(client.client_id))) throw new Error('not found');
  } catch (err) {
    console.error(`invalid client ${client.client_id}: ${err.error_description || err.message}`);
    process.exit(2);
  }
}

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${config.issuer}`);
});
server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${config.port}: ${err.message}`);
  process.exit(3);
});

// Exit when the harness that started us is gone (a crashed test run must not leak us).
if (config.parent_pid) {
  setInterval(() => {
    try {
      process.kill(config.parent_pid, 0);
    } catch (err) {
      if (err.code === 'ESRCH') {
        console.log(`parent ${config.parent_pid} gone, exiting`);
        process.exit(0);
      }
    }
  }, 1000).unref();
}

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
