// The admin API client. The page is a legacy web client on purpose: it logs
// in as client "web", holds the HttpOnly session cookie the browser keeps for
// it, and sends the CSRF token (kept only in memory) on every unsafe request.

export const creds = {
  csrf: null,
  // An access token, only when login issued no session (the web client's
  // phase no longer gives sessions). Memory only: a reload signs out.
  bearer: null,
};

export class ApiError extends Error {
  constructor(status, problem, path) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status} from ${path}`);
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || '';
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && creds.csrf) headers['X-CSRF-Token'] = creds.csrf;
  if (creds.bearer) headers.Authorization = 'Bearer ' + creds.bearer;
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, path);
  return data;
}

// renewCsrf fetches the CSRF token of the current session.
export async function renewCsrf() {
  creds.csrf = (await api('GET', '/auth/csrf')).csrf_token;
}

export function messageOf(err) {
  if (err instanceof ApiError) return err.code ? `${err.message} (${err.code})` : err.message;
  return `the server cannot be reached (${err && err.message ? err.message : err})`;
}
