// tokenshift operator dashboard.
//
// A legacy web client on purpose: it logs in as client "web", holds the
// HttpOnly session cookie the browser keeps for it, and sends the CSRF token
// (kept only in memory) on every unsafe request. Everything it shows comes
// from the admin API; it never decides anything the server would not.
'use strict';

(function () {
  const SCHEMES = ['session', 'bearer', 'jwt_cookie'];
  const REFRESH_MS = 10000;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    csrf: null,
    // An access token, only when login issued no session (the web client's
    // phase no longer gives sessions). Memory only: a reload signs out.
    bearer: null,
    me: null,
    flags: null,
    usage: null,
    audit: null,
    window: '24h',
    timer: null,
    // The refresh under way (a promise), and whether another was asked for
    // meanwhile.
    loading: null,
    again: false,
    // The operator edited phase or rollout: periodic refreshes must not
    // overwrite what they are about to submit.
    formDirty: false,
  };

  const $ = (id) => document.getElementById(id);

  // el builds an element; strings become text nodes, so server data can never
  // turn into markup.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function show(e, visible) {
    e.hidden = !visible;
  }

  // ---- formatting -------------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');

  function fmtInt(n) {
    return Number(n || 0).toLocaleString('en-US');
  }

  function pct(x, digits) {
    return (Number(x || 0) * 100).toFixed(digits === undefined ? 1 : digits) + ' %';
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  // fmtDuration shortens Go durations ("24h0m0s" → "24h"), which some
  // figures carry as Go prints them.
  function fmtDuration(d) {
    return String(d || '').replace(/^(\d+h)0m0s$/, '$1').replace(/^(\d+h\d+m)0s$/, '$1').replace(/^(\d+m)0s$/, '$1');
  }

  function timeEl(iso, text) {
    return el('time', { datetime: iso, title: fmtTime(iso) }, text || fmtTime(iso));
  }

  function zoneLabel() {
    const off = -new Date().getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const a = Math.abs(off);
    return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  // ---- API --------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem, path) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status} from ${path}`);
      this.status = status;
      this.problem = problem || {};
      this.code = this.problem.code || '';
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    if (state.bearer) headers.Authorization = 'Bearer ' + state.bearer;
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

  function messageOf(err) {
    if (err instanceof ApiError) return err.code ? `${err.message} (${err.code})` : err.message;
    return `the server cannot be reached (${err && err.message ? err.message : err})`;
  }

  // ---- views ------------------------------------------------------------

  function showView(name) {
    show($('loading'), false);
    show($('login-view'), name === 'login');
    show($('forbidden-view'), name === 'forbidden');
    show($('dashboard'), name === 'dashboard');
    show($('whoami'), name === 'dashboard' || name === 'forbidden');
  }

  function showPageError(text) {
    const box = $('page-error');
    box.textContent = text;
    show(box, true);
  }

  function hidePageError() {
    show($('page-error'), false);
  }

  function showLogin(note) {
    stopTimer();
    const n = $('login-note');
    n.textContent = note || '';
    show(n, !!note);
    show($('login-error'), false);
    showView('login');
    $('login-email').focus();
  }

  function showForbidden(me) {
    stopTimer();
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
    state.csrf = null;
    state.bearer = null;
    state.me = null;
    state.flags = null;
  }

  function loginNoteFor(err) {
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
  function handleAuthError(err) {
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

  // ---- login and logout ------------------------------------------------

  async function enter(me, csrf) {
    state.me = me;
    if (!(me.roles || []).includes('admin')) {
      showForbidden(me);
      return;
    }
    if (csrf) {
      state.csrf = csrf;
    } else if (!state.bearer && (me.scheme === 'session' || me.scheme === 'jwt_cookie')) {
      // After a reload the token from the login answer is gone; the session
      // gives a fresh one.
      state.csrf = (await api('GET', '/auth/csrf')).csrf_token;
    }
    renderWhoami(me);
    state.formDirty = false;
    showView('dashboard');
    await refresh();
    schedule();
  }

  async function onLogin(ev) {
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
      state.bearer = !r.session && r.access_token ? r.access_token : null;
      const scheme = r.session ? 'session' : state.bearer ? 'bearer' : 'jwt_cookie';
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

  async function onLogout() {
    stopTimer();
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

  // ---- refresh ----------------------------------------------------------

  function stopTimer() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }

  function schedule() {
    stopTimer();
    state.timer = setTimeout(async () => {
      state.timer = null;
      if (!document.hidden) await refresh();
      if (state.me) schedule();
    }, REFRESH_MS);
  }

  // refresh reloads flags, usage and audit. A call made while one is under
  // way (a change right after a periodic refresh began) runs again after it,
  // so the page never keeps showing the state from before a change.
  function refresh() {
    if (!state.me) return Promise.resolve();
    if (state.loading) {
      state.again = true;
      return state.loading;
    }
    state.loading = load().finally(() => {
      state.loading = null;
      if (state.again) {
        state.again = false;
        return refresh();
      }
    });
    return state.loading;
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
    renderControls();
    renderAudit();
  }

  // ---- migration state and readiness -----------------------------------

  function overridesText(f) {
    const ids = Object.keys(f.clients || {}).sort();
    if (!ids.length) return 'none';
    return ids.map((id) => `${id} → ${f.clients[id].phase}`).join(', ');
  }

  function renderState() {
    const list = $('state-list');
    clear(list);
    const f = state.flags;
    const u = state.usage;
    const fact = (term, ...value) => list.append(el('dt', { text: term }), el('dd', {}, ...value));
    if (f) {
      fact('Global phase', el('strong', { class: 'phase phase-' + f.phase, text: f.phase }));
      fact('Client overrides', overridesText(f));
      fact('Rollout of retiring', `${f.rollout} % of users`);
      fact('Exempt clients', (f.exempt_clients || []).join(', ') || 'none');
      fact('Sunset', f.sunset ? timeEl(f.sunset) : 'not set');
      fact(
        'Flags version',
        `${f.version}`,
        f.updated_at ? [', changed ', timeEl(f.updated_at, fmtTime(f.updated_at)), f.updated_by ? ` by ${f.updated_by}` : ''] : '',
      );
    }
    if (u) {
      const session = (u.schemes && u.schemes.session) || {};
      fact(
        `Accepted requests (${u.window})`,
        `${fmtInt(u.requests)}, of which ${pct(session.share)} with a session; ${fmtInt(u.rejected)} rejected`,
      );
      if (u.users !== null && u.users !== undefined) fact('Distinct users', `about ${fmtInt(u.users)}`);
    }
    renderReadiness(u);
  }

  function renderReadiness(u) {
    const box = $('readiness');
    clear(box);
    if (!u || !u.readiness) {
      box.append(el('p', { class: 'muted', text: 'The usage report is not available.' }));
      return;
    }
    const r = u.readiness;
    box.className = 'readiness ' + (r.ready ? 'ok' : 'bad');
    box.append(
      el('h3', { text: r.ready ? 'Ready to retire sessions' : 'Not ready to retire sessions' }),
      el('p', { class: 'small' },
        `Session share ${pct(r.session_share, 2)} (${fmtInt(r.session_requests)} of ${fmtInt(r.total_requests)} accepted requests) ` +
        `over ${fmtDuration(r.window || u.window)}; threshold ${pct(r.threshold, 2)}.`),
    );
    if ((r.reasons || []).length) box.append(el('ul', { class: 'reasons' }, r.reasons.map((t) => el('li', { text: t }))));
    if ((r.notes || []).length) box.append(el('ul', { class: 'notes' }, r.notes.map((t) => el('li', { text: t }))));
  }

  // ---- chart ------------------------------------------------------------

  // seriesPoints normalizes the report's series: each point has a start time
  // and accepted requests per scheme.
  function seriesPoints(u) {
    return ((u && u.series) || []).map((p) => {
      const counts = p.schemes || p;
      const point = { start: p.start || p.time || p.at, rejected: Number(p.rejected || 0), total: 0 };
      for (const s of SCHEMES) {
        point[s] = Number(counts[s] || 0);
        point.total += point[s];
      }
      return point;
    });
  }

  function niceStep(max, ticks) {
    const raw = Math.max(max, 1) / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
    return 10 * mag;
  }

  function tickLabel(d, step, n) {
    if (step === '1m') return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (n <= 48) return hm;
    return `${d.getDate()} ${d.toLocaleString('en-US', { month: 'short' })} ${hm}`;
  }

  function renderChart() {
    const box = $('chart');
    clear(box);
    const u = state.usage;
    const pts = seriesPoints(u);
    const stepName = (u && u.series_step) || '1h';
    const unit = stepName === '1m' ? 'per minute' : 'per hour';
    $('chart-title').textContent = `Accepted requests per scheme, ${unit}`;
    $('chart-caption').textContent = u
      ? `From ${fmtTime(u.from)} to ${fmtTime(u.to)}, times in your time zone (${zoneLabel()}). ` +
        'The first bucket can be partial. Rejected requests are not drawn.'
      : '';
    const totals = { session: 0, bearer: 0, jwt_cookie: 0 };
    let max = 0;
    for (const p of pts) {
      for (const s of SCHEMES) totals[s] += p[s];
      max = Math.max(max, p.total);
    }
    if (!pts.length || max === 0) {
      box.append(el('p', { class: 'empty', text: 'No accepted request in this window yet.' }));
      return;
    }

    const W = 760, H = 260, L = 56, R = 12, T = 14, B = 44;
    const plotW = W - L - R, plotH = H - T - B;
    const step = niceStep(max, 4);
    const top = Math.ceil(max / step) * step;
    const y = (v) => T + plotH - (v / top) * plotH;

    const desc =
      `Totals over the window: session ${totals.session}, bearer ${totals.bearer}, jwt_cookie ${totals.jwt_cookie}. ` +
      `The busiest bucket has ${max} accepted requests.`;
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img',
      'aria-labelledby': 'chart-svg-title chart-svg-desc', preserveAspectRatio: 'xMidYMid meet',
    },
    svg('title', { id: 'chart-svg-title', text: `Accepted requests per scheme, ${unit}` }),
    svg('desc', { id: 'chart-svg-desc', text: desc }));

    for (let v = 0; v <= top; v += step) {
      root.append(
        svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid' }),
        svg('text', { x: L - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: fmtInt(v) }),
      );
    }
    root.append(svg('text', {
      x: 14, y: T + plotH / 2, class: 'tick', 'text-anchor': 'middle',
      transform: `rotate(-90 14 ${T + plotH / 2})`, text: 'requests',
    }));

    const slot = plotW / pts.length;
    const bw = Math.max(1, Math.min(48, slot * 0.72));
    const every = Math.ceil(pts.length / 8);
    pts.forEach((p, i) => {
      const d = new Date(p.start);
      const x = L + i * slot + (slot - bw) / 2;
      const g = svg('g', {
        class: 'bucket', 'data-start': p.start,
        'data-session': p.session, 'data-bearer': p.bearer, 'data-jwt_cookie': p.jwt_cookie,
      }, svg('title', {
        text: `${fmtTime(p.start)}: session ${p.session}, bearer ${p.bearer}, jwt_cookie ${p.jwt_cookie}, rejected ${p.rejected}`,
      }));
      let base = 0;
      for (const s of SCHEMES) {
        if (p[s] > 0) {
          const y0 = y(base), y1 = y(base + p[s]);
          g.append(svg('rect', { x, y: y1, width: bw, height: Math.max(1, y0 - y1), class: 'bar scheme-' + s }));
          base += p[s];
        }
      }
      root.append(g);
      if (i % every === 0) {
        root.append(svg('text', {
          x: L + i * slot + slot / 2, y: T + plotH + 18, class: 'tick', 'text-anchor': 'middle',
          text: isNaN(d) ? '' : tickLabel(d, stepName, pts.length),
        }));
      }
    });
    box.append(root);
  }

  function renderSeriesTable() {
    const body = $('series-table').tBodies[0];
    clear(body);
    for (const p of seriesPoints(state.usage)) {
      body.append(el('tr', {},
        el('th', { scope: 'row' }, timeEl(p.start)),
        SCHEMES.map((s) => el('td', { class: 'num', text: fmtInt(p[s]) })),
        el('td', { class: 'num', text: fmtInt(p.rejected) })));
    }
  }

  // ---- clients ----------------------------------------------------------

  function clientIds() {
    const ids = [];
    const add = (id) => { if (!ids.includes(id)) ids.push(id); };
    for (const c of (state.usage && state.usage.clients) || []) add(c.client_id);
    for (const id of Object.keys((state.flags && state.flags.effective) || {}).sort()) add(id);
    return ids;
  }

  function registeredIds() {
    return Object.keys((state.flags && state.flags.effective) || {}).sort();
  }

  function renderClients() {
    const body = $('clients').tBodies[0];
    clear(body);
    const f = state.flags;
    const u = state.usage;
    $('clients-caption').textContent = u
      ? `Accepted requests per client and scheme over the last ${u.window}; last use over the whole retention`
      : 'Accepted requests per client and scheme (usage report unavailable)';
    const byId = {};
    for (const c of (u && u.clients) || []) byId[c.client_id] = c;
    for (const id of clientIds()) {
      const c = byId[id];
      const phase = f && f.effective ? f.effective[id] : undefined;
      const override = f && f.clients && f.clients[id];
      const phaseCell = phase
        ? el('td', { 'data-col': 'phase' },
          el('span', { class: 'phase phase-' + phase, text: phase }), ' ',
          el('span', { class: 'muted small', text: override ? '(override)' : '(global)' }))
        : el('td', { 'data-col': 'phase', class: 'muted', text: 'not registered' });
      const sc = (s) => (c && c.schemes && c.schemes[s]) || { requests: 0, share: 0, last_seen: null };
      const last = sc('session').last_seen;
      const r = c && c.readiness;
      body.append(el('tr', { 'data-client': id },
        el('th', { scope: 'row', text: id }),
        phaseCell,
        SCHEMES.map((s) => el('td', { class: 'num', 'data-col': s, text: c ? fmtInt(sc(s).requests) : '—' })),
        el('td', { class: 'num', 'data-col': 'session-share', text: c ? pct(sc('session').share) : '—' }),
        el('td', { 'data-col': 'last-session' }, last ? timeEl(last, ago(last)) : 'never'),
        el('td', { 'data-col': 'readiness' }, r
          ? [el('span', { class: 'badge ' + (r.ready ? 'ok' : 'bad'), text: r.ready ? 'Ready' : 'Not ready' }),
            (r.reasons || []).length ? el('ul', { class: 'reasons small' }, r.reasons.map((t) => el('li', { text: t }))) : '']
          : '—'),
      ));
    }
  }

  // ---- controls ---------------------------------------------------------

  function renderControls() {
    const f = state.flags;
    if (!f) return;
    const scope = $('scope');
    const want = [''].concat(registeredIds());
    const have = Array.from(scope.options).map((o) => o.value);
    if (want.join('\n') !== have.join('\n')) {
      const keep = scope.value;
      clear(scope);
      for (const id of want) scope.append(el('option', { value: id }));
      scope.value = want.includes(keep) ? keep : '';
    }
    for (const o of scope.options) {
      o.textContent = o.value === ''
        ? `All clients (global phase, now ${f.phase})`
        : `${o.value} (now ${f.effective[o.value]}${f.clients[o.value] ? ', override' : ', follows global'})`;
    }
    if (!state.formDirty) setFormDefaults();
    else describeCurrent();
  }

  function currentPhaseOf(scope) {
    const f = state.flags;
    if (scope === '') return f.phase;
    return (f.clients[scope] && f.clients[scope].phase) || '';
  }

  // setFormDefaults shows the scope's current phase and the current rollout,
  // so "Apply" on an untouched form changes nothing.
  function setFormDefaults() {
    const f = state.flags;
    if (!f) return;
    const scope = $('scope').value;
    const phase = $('phase');
    const follow = phase.querySelector('option[value=""]');
    if (scope !== '' && !follow) phase.prepend(el('option', { value: '', text: 'follow the global phase (no override)' }));
    if (scope === '' && follow) follow.remove();
    phase.value = currentPhaseOf(scope);
    $('rollout').value = String(f.rollout);
    describeCurrent();
  }

  function describeCurrent() {
    const f = state.flags;
    const scope = $('scope').value;
    const cur = currentPhaseOf(scope);
    $('phase-help').textContent = scope === ''
      ? `Now: ${f.phase}. Clients with an override keep theirs.`
      : cur
        ? `Now: ${cur} (override for ${scope}).`
        : `Now: ${f.phase} (${scope} follows the global phase).`;
  }

  function showChangeResult(text) {
    show($('change-error'), false);
    const box = $('change-result');
    box.textContent = text;
    show(box, true);
  }

  function showChangeError(...content) {
    show($('change-result'), false);
    const box = $('change-error');
    clear(box);
    append(box, content);
    show(box, true);
  }

  function guardRefusal(p) {
    const g = p.figures || {};
    const clients = (g.clients || []).join(', ') || 'all clients';
    return [
      el('p', {}, el('strong', { text: 'Refused by the usage guard: nothing was changed.' })),
      el('p', {
        text: `Over the last ${fmtDuration(g.window)}, ${pct(g.session_share, 2)} of the accepted requests of ${clients} ` +
          `used a session (${fmtInt(g.session_requests)} of ${fmtInt(g.total_requests)}); ` +
          `the guard allows at most ${pct(g.max_share, 2)}.`,
      }),
      el('dl', { class: 'facts compact' },
        el('dt', { text: 'Affected clients' }), el('dd', { text: clients }),
        el('dt', { text: 'Window' }), el('dd', { text: fmtDuration(g.window) }),
        el('dt', { text: 'Session requests' }), el('dd', { text: `${fmtInt(g.session_requests)} of ${fmtInt(g.total_requests)}` }),
        el('dt', { text: 'Session share' }), el('dd', { text: pct(g.session_share, 2) }),
        el('dt', { text: 'Maximum allowed' }), el('dd', { text: pct(g.max_share, 2) }),
        el('dt', { text: 'Usage data covers' }), el('dd', { text: g.covered ? `${g.covered} of ${fmtDuration(g.window)}` : '—' })),
      (g.reasons || []).length ? el('ul', { class: 'reasons' }, g.reasons.map((t) => el('li', { text: t }))) : '',
      el('p', {
        text: 'Wait until these clients have moved to tokens (see the clients table), ' +
          'or tick "Force past the usage guard" and give a reason.',
      }),
    ];
  }

  async function changeFailed(err, what) {
    if (handleAuthError(err)) return;
    if (err instanceof ApiError) {
      switch (err.code) {
        case 'guard_refused':
          showChangeError(guardRefusal(err.problem));
          return;
        case 'version_conflict':
          state.formDirty = true; // keep the operator's choice to re-apply
          showChangeError(el('p', {
            text: `Someone else changed the flags since this page read them (now version ${err.problem.current_version}). ` +
              `Nothing was applied. The page has reloaded the current state: check it, then ${what} again.`,
          }));
          return;
        case 'csrf_failed':
          try {
            state.csrf = (await api('GET', '/auth/csrf')).csrf_token;
          } catch (e) {
            // the error below says enough
          }
          showChangeError(el('p', { text: `The request was refused (${err.message}). The page has renewed its CSRF token: ${what} again.` }));
          return;
      }
    }
    showChangeError(el('p', { text: `Nothing was changed: ${messageOf(err)}` }));
  }

  function setBusy(busy) {
    for (const id of ['apply', 'rollback']) $(id).disabled = busy;
  }

  async function onChange(ev) {
    ev.preventDefault();
    const f = state.flags;
    if (!f) return;
    const scope = $('scope').value;
    const phase = $('phase').value;
    const reason = $('reason').value.trim();
    const force = $('force').checked;
    const body = { version: f.version };
    const what = [];
    if (scope === '') {
      if (phase !== f.phase) {
        body.phase = phase;
        what.push(`global phase ${f.phase} → ${phase}`);
      }
    } else {
      const cur = currentPhaseOf(scope);
      if (phase !== cur) {
        const clients = Object.assign({}, f.clients);
        if (phase) clients[scope] = { phase };
        else delete clients[scope];
        body.clients = clients;
        what.push(`${scope}: ${cur || `global (${f.phase})`} → ${phase || `global (${f.phase})`}`);
      }
    }
    const rtext = $('rollout').value.trim();
    if (rtext !== '') {
      const r = Number(rtext);
      if (!Number.isFinite(r) || r < 0 || r > 100) {
        showChangeError(el('p', { text: 'The rollout must be a number between 0 and 100.' }));
        return;
      }
      if (r !== f.rollout) {
        body.rollout = r;
        what.push(`rollout ${f.rollout} % → ${r} %`);
      }
    }
    if (!what.length) {
      showChangeResult('Nothing to change: the form shows the current state.');
      return;
    }
    if (force && !reason) {
      showChangeError(el('p', { text: 'Forcing past the guard needs a reason: say why the figures can be overridden.' }));
      $('reason').focus();
      return;
    }
    if (reason) body.reason = reason;
    if (force) body.force = true;
    setBusy(true);
    try {
      const st = await api('PUT', '/admin/flags', body);
      state.flags = st;
      state.formDirty = false;
      $('reason').value = '';
      $('force').checked = false;
      showChangeResult(`Applied (version ${st.version}${force ? ', forced' : ''}): ${what.join('; ')}.`);
    } catch (err) {
      await changeFailed(err, 'apply your change');
    } finally {
      setBusy(false);
      await refresh();
    }
  }

  async function onRollback(ev) {
    ev.preventDefault();
    const reason = $('rollback-reason').value.trim();
    const before = state.flags;
    setBusy(true);
    try {
      const st = await api('POST', '/admin/flags/rollback', reason ? { reason } : {});
      state.flags = st;
      state.formDirty = false;
      $('rollback-reason').value = '';
      showChangeResult(`Rolled back (now version ${st.version}): ${before ? describeChange(before, st) : 'previous state restored'}.`);
    } catch (err) {
      await changeFailed(err, 'roll back');
    } finally {
      setBusy(false);
      await refresh();
    }
  }

  // ---- audit ------------------------------------------------------------

  // describeChange says in words what differs between two flag states.
  function describeChange(from, to) {
    if (!to) return '';
    if (!from) return `initial state: phase ${to.phase}; overrides ${overridesText(to)}; rollout ${to.rollout} %`;
    const parts = [];
    if (from.phase !== to.phase) parts.push(`global phase ${from.phase} → ${to.phase}`);
    const ids = new Set(Object.keys(from.clients || {}).concat(Object.keys(to.clients || {})));
    for (const id of Array.from(ids).sort()) {
      const a = from.clients && from.clients[id] ? from.clients[id].phase : '';
      const b = to.clients && to.clients[id] ? to.clients[id].phase : '';
      if (a !== b) parts.push(`${id}: ${a || 'global'} → ${b || 'global'}`);
    }
    if (from.rollout !== to.rollout) parts.push(`rollout ${from.rollout} % → ${to.rollout} %`);
    const ex = (s) => (s.exempt_clients || []).slice().sort().join(', ') || 'none';
    if (ex(from) !== ex(to)) parts.push(`exempt clients ${ex(from)} → ${ex(to)}`);
    if ((from.sunset || '') !== (to.sunset || '')) parts.push(`sunset ${from.sunset || 'none'} → ${to.sunset || 'none'}`);
    if ((from.docs_url || '') !== (to.docs_url || '')) parts.push('docs URL changed');
    if ((from.rollout_seed || '') !== (to.rollout_seed || '')) parts.push('rollout seed changed');
    return parts.join('; ') || 'no setting changed';
  }

  // guardText fills the Forced/guard column: a forced change, a refusal
  // (nothing changed), or neither.
  function guardText(e, g) {
    // The reasons say why (share, missing history, no traffic); entries
    // written before the guard gave reasons only have the share.
    let figures = '';
    if (g && (g.reasons || []).length) figures = ` (${g.reasons.join('; ')})`;
    else if (g) figures = ` (session share ${pct(g.session_share, 2)} > ${pct(g.max_share, 2)})`;
    if (e.forced) return 'yes' + figures;
    if (e.action === 'refused') return 'refused by the guard' + figures;
    return 'no';
  }

  function renderAudit() {
    const body = $('audit').tBodies[0];
    clear(body);
    const entries = (state.audit && state.audit.entries) || [];
    if (!entries.length) {
      body.append(el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No change recorded yet.' })));
      return;
    }
    for (const e of entries) {
      const g = e.figures;
      body.append(el('tr', {},
        el('td', {}, timeEl(e.at)),
        el('td', { text: e.actor || '—' }),
        el('td', { text: e.action }),
        el('td', { text: describeChange(e.from, e.to) }),
        el('td', { text: e.reason || '—' }),
        el('td', { text: guardText(e, g) })));
    }
  }

  // ---- start ------------------------------------------------------------

  function wire() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('forbidden-logout').addEventListener('click', onLogout);
    $('refresh-now').addEventListener('click', () => refresh());
    $('window').addEventListener('change', (ev) => {
      state.window = ev.target.value;
      refresh();
    });
    $('change-form').addEventListener('submit', onChange);
    $('rollback-form').addEventListener('submit', onRollback);
    $('scope').addEventListener('change', () => {
      state.formDirty = false;
      setFormDefaults();
    });
    for (const id of ['phase', 'rollout']) {
      $(id).addEventListener('input', () => { state.formDirty = true; });
      $(id).addEventListener('change', () => { state.formDirty = true; });
    }
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
})();
