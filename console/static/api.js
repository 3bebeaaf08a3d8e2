// The calls the console makes: the same REST API, IAM, lookups and control API that
// clients call. Credentials live in this module's variables only: never in storage, a
// cookie, a URL or the page.

let token = null; // the signed-in user's IAM access token
let adminToken = null; // the control API's bearer token

// An answer that is not a success, with the server's own message.
export class APIError extends Error {
  constructor(status, message, trace) {
    super(message);
    this.status = status;
    this.trace = trace;
  }
}

async function answer(resp) {
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    // The API's error container, or IAM's shape at /identity/.
    const message = body?.errors?.[0]?.message ?? body?.errorMessage ?? `${resp.status} ${resp.statusText}`;
    const trace = body?.trace ?? body?.context?.requestId ?? resp.headers.get('X-Correlation-ID') ?? '';
    throw new APIError(resp.status, message, trace);
  }
  return body;
}

// signIn exchanges an API key at IAM, as IBM's SDKs do, and returns the token's claims.
export async function signIn(apikey) {
  const resp = await fetch('/identity/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'urn:ibm:params:oauth:grant-type:apikey', apikey }),
    cache: 'no-store',
  });
  const t = await answer(resp);
  token = t.access_token;
  return claims(token);
}

export function signOut() {
  token = null;
}

export function signedIn() {
  return token !== null;
}

// claims reads a token's payload to show whose it is; the server verifies it.
function claims(jwt) {
  const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(payload));
}

// api calls a path of this server as the signed-in user; crn is sent as Service-CRN.
export async function api(method, path, { crn, body } = {}) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (crn) headers['Service-CRN'] = crn;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  return answer(resp);
}

export function setAdmin(t) {
  adminToken = t;
}

export function isAdmin() {
  return adminToken !== null;
}

// control calls the control API (/control/v1) with the admin token.
export async function control(method, path, body) {
  const headers = { Authorization: `Bearer ${adminToken}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(`/control/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  return answer(resp);
}
