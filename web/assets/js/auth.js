// Sign-in: development users in local mode; Cognito hosted UI (authorization code + PKCE) on AWS,
// with token refresh before expiry and sign-out through Cognito's logout endpoint.

const ROLES = ["viewer", "operator", "admin"];
const DEV_KEY = "cmlcm.devUser";
const TOKENS_KEY = "cmlcm.tokens";
const PKCE_KEY = "cmlcm.pkce";

/** Rank of a role, for "at least" checks (viewer 1, operator 2, admin 3; 0 for none). */
export function rank(role) {
  return ROLES.indexOf(role) + 1;
}

function highestRole(groups) {
  const list = Array.isArray(groups) ? groups : String(groups || "").split(/[ ,]+/);
  return list.filter((g) => rank(g) > 0).sort((a, b) => rank(b) - rank(a))[0] || null;
}

function decodeJwt(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(decodeURIComponent(escape(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")))));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 48) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The signed-in session: { user, role, token(), wsToken(), signOut() }, or null. */
export class Session {
  constructor(config, { user, role, tokens }) {
    this.config = config;
    this.user = user;
    this.role = role;
    this.tokens = tokens || null;
    this._refreshing = null;
  }

  can(minimumRole) {
    return rank(this.role) >= rank(minimumRole);
  }

  /** A valid bearer token for REST, refreshed first when it expires within a minute. */
  async token() {
    if (this.config.mode === "local") return this.user;
    if (this.tokens.expires_at - Date.now() < 60_000) await this.refresh();
    return this.tokens.id_token;
  }

  async wsToken() {
    return this.token();
  }

  /** Cognito refresh_token grant; on failure the user signs in again. */
  async refresh() {
    if (!this._refreshing) {
      this._refreshing = (async () => {
        const body = new URLSearchParams({
          grant_type: "refresh_token",
          client_id: this.config.cognito.clientId,
          refresh_token: this.tokens.refresh_token,
        });
        const response = await fetch(`${this.config.cognito.domain}/oauth2/token`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body,
        });
        if (!response.ok) {
          sessionStorage.removeItem(TOKENS_KEY);
          await startHostedSignIn(this.config);
          return;
        }
        const fresh = await response.json();
        this.tokens = storeTokens({ ...fresh, refresh_token: fresh.refresh_token || this.tokens.refresh_token });
      })().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  /** Forget the tokens here, revoke the refresh token at Cognito (it would otherwise stay valid
   * for its whole lifetime), then end the hosted-UI session through Cognito's /logout. */
  async signOut() {
    sessionStorage.removeItem(DEV_KEY);
    sessionStorage.removeItem(TOKENS_KEY);
    if (this.config.mode === "local") {
      location.assign("/");
      return;
    }
    const refreshToken = this.tokens && this.tokens.refresh_token;
    this.tokens = null;
    if (refreshToken) {
      // A CORS-safelisted form POST that outlives the page (keepalive); its answer is not needed.
      const revoked = fetch(`${this.config.cognito.domain}/oauth2/revoke`, {
        method: "POST",
        mode: "no-cors",
        keepalive: true,
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: refreshToken, client_id: this.config.cognito.clientId }),
      }).catch(() => null);
      await Promise.race([revoked, new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    const url = new URL(`${this.config.cognito.domain}/logout`);
    url.searchParams.set("client_id", this.config.cognito.clientId);
    url.searchParams.set("logout_uri", this.config.cognito.signOutUrl || location.origin + "/");
    location.assign(url.toString());
  }
}

function storeTokens(raw) {
  const tokens = {
    id_token: raw.id_token,
    access_token: raw.access_token,
    refresh_token: raw.refresh_token,
    expires_at: Date.now() + (raw.expires_in || 3600) * 1000,
  };
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  return tokens;
}

/** Redirect to the Cognito hosted UI with a fresh PKCE verifier and state. */
export async function startHostedSignIn(config) {
  const verifier = randomString(64);
  const state = randomString(24);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, hash: location.hash }));
  const url = new URL(`${config.cognito.domain}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.cognito.clientId,
    redirect_uri: config.cognito.redirectUri || location.origin + "/",
    scope: "openid email profile",
    state,
    code_challenge_method: "S256",
    code_challenge: challenge,
  }).toString();
  location.assign(url.toString());
}

async function finishHostedSignIn(config, params) {
  const pending = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  if (!pending || pending.state !== params.get("state")) throw new Error("sign-in state mismatch: start again");
  const response = await fetch(`${config.cognito.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.cognito.clientId,
      code: params.get("code"),
      redirect_uri: config.cognito.redirectUri || location.origin + "/",
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`sign-in failed (${response.status})`);
  storeTokens(await response.json());
  history.replaceState(null, "", "/" + (pending.hash || ""));
}

/** Resolve the session from the URL and storage; null when the user has to sign in. */
export async function resolveSession(config) {
  const params = new URLSearchParams(location.search);
  if (config.mode === "local") {
    const asked = params.get("user");
    if (asked && (config.devUsers || []).includes(asked)) {
      sessionStorage.setItem(DEV_KEY, asked);
      history.replaceState(null, "", "/" + location.hash);
    }
    const user = sessionStorage.getItem(DEV_KEY);
    if (!user) return null;
    return new Session(config, { user, role: user.replace(/^dev-/, "") });
  }
  if (params.get("error")) {
    // The hosted UI sends the user back with an error (a cancelled sign-in, a disabled user).
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", "/" + location.hash);
    throw new Error(`sign-in refused: ${params.get("error_description") || params.get("error")}`);
  }
  if (params.get("code")) await finishHostedSignIn(config, params);
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null");
  if (!tokens) return null;
  const claims = decodeJwt(tokens.id_token);
  const session = new Session(config, {
    user: claims.email || claims["cognito:username"] || claims.sub,
    role: highestRole(claims["cognito:groups"]),
    tokens,
  });
  if (tokens.expires_at - Date.now() < 60_000) await session.refresh();
  return session;
}
