// The migration state, readiness, clients, legacy sources and audit tables: what the flags,
// the usage report and the audit log say, as the server said it.

import { SCHEMES } from './chart.js';
import { $, clear, el } from './dom.js';
import { ago, describeChange, fmtDuration, fmtInt, fmtTime, overridesText, pct, timeEl } from './format.js';
import { registeredIds, state } from './state.js';

export function renderState() {
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

// clientIds are the clients that have traffic, then the other registered ones.
function clientIds() {
  const ids = [];
  const add = (id) => { if (!ids.includes(id)) ids.push(id); };
  for (const c of (state.usage && state.usage.clients) || []) add(c.client_id);
  for (const id of registeredIds()) add(id);
  return ids;
}

export function renderClients() {
  const body = $('clients').tBodies[0];
  clear(body);
  const u = state.usage;
  $('clients-caption').textContent = u
    ? `Accepted requests per client and scheme over the last ${u.window}; last use over the whole retention`
    : 'Accepted requests per client and scheme (usage report unavailable)';
  const byId = {};
  for (const c of (u && u.clients) || []) byId[c.client_id] = c;
  for (const id of clientIds()) body.append(clientRow(id, byId[id]));
}

function clientRow(id, c) {
  const f = state.flags;
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
  return el('tr', { 'data-client': id },
    el('th', { scope: 'row', text: id }),
    phaseCell,
    SCHEMES.map((s) => el('td', { class: 'num', 'data-col': s, text: c ? fmtInt(sc(s).requests) : '—' })),
    el('td', { class: 'num', 'data-col': 'session-share', text: c ? pct(sc('session').share) : '—' }),
    el('td', { 'data-col': 'last-session' }, last ? timeEl(last, ago(last)) : 'never'),
    el('td', { 'data-col': 'readiness' }, r
      ? [el('span', { class: 'badge ' + (r.ready ? 'ok' : 'bad'), text: r.ready ? 'Ready' : 'Not ready' }),
        (r.reasons || []).length ? el('ul', { class: 'reasons small' }, r.reasons.map((t) => el('li', { text: t }))) : '']
      : '—'),
  );
}

// renderSources lists the legacy sources of the report (legacy.sources):
// the card stays hidden when none is configured, so a deployment without
// legacy sessions sees no empty table.
export function renderSources() {
  const card = $('sources-card');
  const body = $('sources').tBodies[0];
  clear(body);
  const u = state.usage;
  const sources = (u && u.sources) || {};
  const names = Object.keys(sources).sort();
  card.hidden = names.length === 0;
  if (!names.length) return;
  $('sources-caption').textContent =
    `Accepted requests per legacy source over the last ${u.window}; last use over the whole retention`;
  for (const name of names) {
    const s = sources[name] || {};
    body.append(el('tr', { 'data-source': name },
      el('th', { scope: 'row', text: name }),
      el('td', { class: 'num', 'data-col': 'requests', text: fmtInt(s.requests) }),
      el('td', { class: 'num', 'data-col': 'users', text: s.users === null || s.users === undefined ? 'n/a' : fmtInt(s.users) }),
      el('td', { class: 'num', 'data-col': 'rejected', text: fmtInt(s.rejected) }),
      el('td', { 'data-col': 'last-seen' }, s.last_seen ? timeEl(s.last_seen, ago(s.last_seen)) : 'never')));
  }
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

export function renderAudit() {
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
