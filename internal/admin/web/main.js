// tokenshift operator dashboard: starts the page and keeps its figures
// fresh. Everything it shows comes from the admin API; it never decides
// anything the server would not. One module per job: dom, format, api,
// state, session (login and views), chart, report (tables), controls.

import { ApiError, api, messageOf } from './api.js';
import { renderChart, renderSeriesTable } from './chart.js';
import { renderControls, wireControls } from './controls.js';
import { $, show } from './dom.js';
import { fmtTime } from './format.js';
import { renderAudit, renderClients, renderSources, renderState } from './report.js';
import { enter, handleAuthError, hidePageError, loginNoteFor, onLogin, onLogout, setLifecycle, showLogin, showPageError } from './session.js';
import { state } from './state.js';

const REFRESH_MS = 10000;

const loop = {
  timer: null,
  // The refresh under way (a promise), and whether another was asked for
  // meanwhile.
  loading: null,
  again: false,
};

function stopTimer() {
  if (loop.timer) clearTimeout(loop.timer);
  loop.timer = null;
}

function schedule() {
  stopTimer();
  loop.timer = setTimeout(async () => {
    loop.timer = null;
    if (!document.hidden) await refresh();
    if (state.me) schedule();
  }, REFRESH_MS);
}

// refresh reloads flags, usage and audit. A call made while one is under
// way (a change right after a periodic refresh began) runs again after it,
// so the page never keeps showing the state from before a change.
function refresh() {
  if (!state.me) return Promise.resolve();
  if (loop.loading) {
    loop.again = true;
    return loop.loading;
  }
  loop.loading = load().finally(() => {
    loop.loading = null;
    if (loop.again) {
      loop.again = false;
      return refresh();
    }
  });
  return loop.loading;
}

async function load() {
  const [flags, usage, audit] = await Promise.allSettled([
    api('GET', '/admin/flags'),
    api('GET', '/admin/usage?window=' + encodeURIComponent(state.window)),
    api('GET', '/admin/audit?limit=20'),
  ]);
  const failures = [];
  for (const [name, r] of [['flags', flags], ['usage report', usage], ['audit log', audit]]) {
    if (r.status === 'rejected') {
      if (handleAuthError(r.reason)) return;
      failures.push(`${name}: ${messageOf(r.reason)}`);
    }
  }
  if (flags.status === 'fulfilled') state.flags = flags.value;
  if (usage.status === 'fulfilled') state.usage = usage.value;
  if (audit.status === 'fulfilled') state.audit = audit.value;
  render();
  if (failures.length) showPageError('Some figures could not be refreshed: ' + failures.join('; '));
  else hidePageError();
  $('refreshed').textContent = 'Updated ' + fmtTime(new Date().toISOString());
}

function render() {
  renderState();
  renderChart();
  renderSeriesTable();
  renderClients();
  renderSources();
  renderControls();
  renderAudit();
}

function wire() {
  setLifecycle({
    start: async () => {
      await refresh();
      schedule();
    },
    stop: stopTimer,
  });
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('forbidden-logout').addEventListener('click', onLogout);
  $('refresh-now').addEventListener('click', () => refresh());
  $('window').addEventListener('change', (ev) => {
    state.window = ev.target.value;
    refresh();
  });
  wireControls(refresh);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.me) refresh();
  });
}

async function boot() {
  wire();
  let me;
  try {
    me = await api('GET', '/auth/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(loginNoteFor(err));
    } else {
      show($('loading'), false);
      showPageError('The server cannot tell who you are: ' + messageOf(err));
      showLogin('');
    }
    return;
  }
  try {
    await enter(me, null);
  } catch (err) {
    if (!handleAuthError(err)) {
      show($('loading'), false);
      showPageError('The dashboard could not start: ' + messageOf(err));
    }
  }
}

boot();
