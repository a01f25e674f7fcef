// Numbers, times and flag changes in words. Everything here is pure except
// timeEl, which wraps a time in a <time> element.

import { el } from './dom.js';

export const pad = (n) => String(n).padStart(2, '0');

export function fmtInt(n) {
  return Number(n || 0).toLocaleString('en-US');
}

export function pct(x, digits) {
  return (Number(x || 0) * 100).toFixed(digits === undefined ? 1 : digits) + ' %';
}

export function fmtTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// fmtDuration shortens Go durations ("24h0m0s" → "24h"), which some
// figures carry as Go prints them.
export function fmtDuration(d) {
  return String(d || '').replace(/^(\d+h)0m0s$/, '$1').replace(/^(\d+h\d+m)0s$/, '$1').replace(/^(\d+m)0s$/, '$1');
}

export function timeEl(iso, text) {
  return el('time', { datetime: iso, title: fmtTime(iso) }, text || fmtTime(iso));
}

export function zoneLabel() {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

export function overridesText(f) {
  const ids = Object.keys(f.clients || {}).sort();
  if (!ids.length) return 'none';
  return ids.map((id) => `${id} → ${f.clients[id].phase}`).join(', ');
}

// describeChange says in words what differs between two flag states.
export function describeChange(from, to) {
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
