// Who is signed in: the login, forbidden and dashboard views, login and
// logout, and what a lost login or a missing role turns into.

import { ApiError, api, creds, messageOf, renewCsrf } from './api.js';
import { $, show } from './dom.js';
import { state } from './state.js';

// What the refresh loop does when the dashboard opens and closes; main sets
// them, so this module needs no import back from it.
const lifecycle = { start: async () => {}, stop: () => {} };

export function setLifecycle(hooks) {
  Object.assign(lifecycle, hooks);
}

export function showView(name) {
  show($('loading'), false);
  show($('login-view'), name === 'login');
  show($('forbidden-view'), name === 'forbidden');
  show($('dashboard'), name === 'dashboard');
  show($('whoami'), name === 'dashboard' || name === 'forbidden');
}

export function showPageError(text) {
  const box = $('page-error');
  box.textContent = text;
  show(box, true);
}

export function hidePageError() {
  show($('page-error'), false);
}

export function showLogin(note) {
  lifecycle.stop();
  const n = $('login-note');
  n.textContent = note || '';
  show(n, !!note);
  show($('login-error'), false);
  showView('login');
  $('login-email').focus();
}

function showForbidden(me) {
  lifecycle.stop();
  $('forbidden-text').textContent =
    `You are signed in as ${me.email || me.user_id}, whose roles are ${(me.roles || []).join(', ') || 'none'}. ` +
    'This dashboard needs the admin role.';
  renderWhoami(me);
  showView('forbidden');
}

function renderWhoami(me) {
  const how =
    me.scheme === 'session'
      ? `session cookie, client ${me.client_id}`
      : me.scheme === 'bearer'
        ? `access token kept in this tab only, client ${me.client_id}`
        : `${me.scheme}, client ${me.client_id}`;
  $('whoami-text').textContent = `Signed in as ${me.email} (${how})`;
}

function resetAuth() {
  creds.csrf = null;
  creds.bearer = null;
  state.me = null;
  state.flags = null;
}

export function loginNoteFor(err) {
  switch (err.code) {
    case 'session_retired':
      return 'Your session was retired by the migration phase of the web client. Log in again.';
    case 'invalid_session':
      return 'Your session has ended. Log in again.';
    case 'invalid_token':
      return 'Your access token has expired. Log in again.';
  }
  return '';
}

// handleAuthError turns a lost login or a missing role into the matching
// view. It reports whether it handled err.
export function handleAuthError(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 401) {
    resetAuth();
    showLogin(loginNoteFor(err) || 'Your login has ended. Log in again.');
    return true;
  }
  if (err.status === 403 && err.code === 'forbidden' && state.me) {
    showForbidden(state.me);
    return true;
  }
  return false;
}

// enter opens the dashboard for me, or the forbidden view without the admin
// role. csrf is the login answer's token; after a reload it is null.
export async function enter(me, csrf) {
  state.me = me;
  if (!(me.roles || []).includes('admin')) {
    showForbidden(me);
    return;
  }
  if (csrf) {
    creds.csrf = csrf;
  } else if (!creds.bearer && (me.scheme === 'session' || me.scheme === 'jwt_cookie')) {
    // After a reload the token from the login answer is gone; the session
    // gives a fresh one.
    await renewCsrf();
  }
  renderWhoami(me);
  state.formDirty = false;
  showView('dashboard');
  await lifecycle.start();
}

export async function onLogin(ev) {
  ev.preventDefault();
  const email = $('login-email').value.trim();
  const password = $('login-password').value;
  const errBox = $('login-error');
  show(errBox, false);
  if (!email || !password) {
    errBox.textContent = 'Enter your email and password.';
    show(errBox, true);
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  try {
    const r = await api('POST', '/auth/login', { email, password, client_id: 'web' });
    $('login-password').value = '';
    creds.bearer = !r.session && r.access_token ? r.access_token : null;
    const scheme = r.session ? 'session' : creds.bearer ? 'bearer' : 'jwt_cookie';
    await enter({ user_id: r.user_id, email: r.email, client_id: r.client_id, roles: r.roles, scheme }, r.csrf_token);
  } catch (err) {
    if (state.me && handleAuthError(err)) return;
    errBox.textContent =
      err instanceof ApiError && err.code === 'invalid_credentials'
        ? 'The email or the password is wrong.'
        : 'Login failed: ' + messageOf(err);
    show(errBox, true);
  } finally {
    button.disabled = false;
  }
}

export async function onLogout() {
  lifecycle.stop();
  try {
    await api('POST', '/auth/logout');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showPageError('Logout failed: ' + messageOf(err));
      return;
    }
  }
  resetAuth();
  hidePageError();
  showLogin('You have logged out.');
}
