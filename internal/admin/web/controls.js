// The change and rollback forms: what the operator asks for, the patch sent
// to PUT /admin/flags, and what a refusal (guard, stale version, CSRF) means.

import { ApiError, api, messageOf, renewCsrf } from './api.js';
import { $, append, clear, el, show } from './dom.js';
import { describeChange, fmtDuration, fmtInt, pct } from './format.js';
import { handleAuthError } from './session.js';
import { registeredIds, state } from './state.js';

// The refresh to run after every change; main sets it in wireControls.
let refresh = async () => {};

export function renderControls() {
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
          await renewCsrf();
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

// changeBody is the patch that moves flags f to what the form asks for, with
// the change in words; an error string when the form is invalid.
function changeBody(f, scope, phase, rtext) {
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
  if (rtext !== '') {
    const r = Number(rtext);
    if (!Number.isFinite(r) || r < 0 || r > 100) return { error: 'The rollout must be a number between 0 and 100.' };
    if (r !== f.rollout) {
      body.rollout = r;
      what.push(`rollout ${f.rollout} % → ${r} %`);
    }
  }
  return { body, what };
}

async function onChange(ev) {
  ev.preventDefault();
  const f = state.flags;
  if (!f) return;
  const reason = $('reason').value.trim();
  const force = $('force').checked;
  const { body, what, error } = changeBody(f, $('scope').value, $('phase').value, $('rollout').value.trim());
  if (error) {
    showChangeError(el('p', { text: error }));
    return;
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

// wireControls attaches the forms; refreshAll reloads the page's figures.
export function wireControls(refreshAll) {
  refresh = refreshAll;
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
}
