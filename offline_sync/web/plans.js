// Planned points: "where to sample next", sent by an official to this device (POST /api/v1/devices/<id>/plan)
// and brought down by the pull as `planned_point` changes. This module keeps them, lists them ("Planned",
// in plan order or nearest first: "navigate to next") and orders the parcel list by them.
//
// LOCAL STORE (the contract other modules read, e.g. the map in fieldmap.js):
//   IndexedDB 'fieldsvc-field', object store 'meta', key 'planned_points' (PLANNED_KEY): an array of the
//   device's OPEN planned points, sorted by plan number then rank, each
//     { id: "<plan>:<parcel>", version: 1, plan: 2, parcel: "360129100200-0007", village: "360129100200",
//       rank: 1, point: { lat: 28.18, lon: 115.62 },            // suggested place to sample, inside the parcel
//       reason: "not_assessed" | "needs_sampling" | "requested",
//       sigma: { analyte: "Cd", value: 0.031 } | null,          // the estimate's σ when it needs sampling
//       nearest_sample_m: 840 | null, status: "open", planned_at: "2026-12-04T13:30:00Z" }
//   A point closed by a sample (`status: "closed"`) or withdrawn by a newer plan (a delete) leaves the array;
//   a sample this phone recorded on a planned parcel (still in the outbox) hides it from the list at once.
//   The key is written in the same IndexedDB transaction as the pull page and its cursor (sync.js), and is
//   cleared with the other pulled stores when the server says the cursor expired (store.js clearPlaces).
//   Parcel-list order chosen by the sampler: meta key 'parcel_order' ('plan' | 'distance' | 'code').

import { centroid, haversine } from './geo.js';
import { getLang, t } from './i18n.js';
import { getMeta, setMeta } from './store.js';

export const PLANNED_KEY = 'planned_points';
const ORDER_KEY = 'parcel_order';
const ORDERS = ['plan', 'distance', 'code'];

const mod = { points: [], order: 'plan', listOrder: 'rank', hooks: { onSelect: () => {}, onChange: () => {} } };

// --- the store (pure: sync.js applies a page of changes inside its own transaction) -----------------

/** The open points after a page of `planned_point` changes, sorted by plan then rank. */
export function applyPlannedChanges(current, changes) {
  const byId = new Map((current || []).map((p) => [p.id, p]));
  for (const c of changes) {
    if (c.type !== 'planned_point') continue;
    const d = c.data || {};
    if (c.deleted || d.status !== 'open') byId.delete(c.id);
    else byId.set(c.id, { ...d, id: c.id, version: c.version });
  }
  return [...byId.values()].sort((a, b) => (a.plan - b.plan) || (a.rank - b.rank));
}

export async function loadPlans() {
  mod.points = (await getMeta(PLANNED_KEY)) || [];
  const order = await getMeta(ORDER_KEY);
  mod.order = ORDERS.includes(order) ? order : 'plan';
  return mod.points;
}

// --- ordering ----------------------------------------------------------------------------------------

/** Open points not yet settled by a sample recorded on this phone. */
export function openPoints(points, outbox) {
  const taken = new Set((outbox || []).filter((r) => !r.deleted).map((r) => r.data && r.data.parcel));
  return (points || []).filter((p) => p.status === 'open' && !taken.has(p.parcel));
}

/** Points with their distance from `position` ({lat, lon} or null), in plan order or nearest first. */
export function orderPoints(points, mode, position) {
  const items = points.map((p) => ({
    ...p, distance_m: position ? haversine(position.lat, position.lon, p.point.lat, p.point.lon) : null,
  }));
  if (mode === 'distance' && position) items.sort((a, b) => a.distance_m - b.distance_m);
  return items;
}

/** The parcel list in the chosen order: planned parcels first by rank ('plan'), nearest first ('distance', to
 * the suggested point of a planned parcel, else the parcel's centroid), or by code. */
export function orderParcels(parcels, position, order = mod.order, points = mod.points) {
  const rank = new Map(points.map((p, i) => [p.parcel, i]));
  const list = [...parcels];
  if (order === 'distance' && position) {
    const where = (p) => {
      const planned = points.find((x) => x.parcel === p.code);
      if (planned) return [planned.point.lat, planned.point.lon];
      return centroid(p.geometry);
    };
    const d = new Map(list.map((p) => [p.code, haversine(position.lat, position.lon, ...where(p))]));
    return list.sort((a, b) => d.get(a.code) - d.get(b.code));
  }
  if (order === 'code') return list.sort((a, b) => a.code.localeCompare(b.code));
  return list.sort((a, b) => (rank.get(a.code) ?? Infinity) - (rank.get(b.code) ?? Infinity) || a.code.localeCompare(b.code));
}

export function plannedRank(code) {
  const i = mod.points.findIndex((p) => p.parcel === code);
  return i < 0 ? null : i + 1;
}

// --- words -------------------------------------------------------------------------------------------

export function formatDistance(m) {
  if (m == null) return '';
  return m < 1000 ? t('plan_m', { n: Math.round(m / 10) * 10 }) : t('plan_km', { n: (m / 1000).toFixed(1) });
}

/** A compass direction (8 points) from `from` to `to`, in the app's language. */
export function direction(from, to) {
  const rad = Math.PI / 180;
  const y = Math.sin((to.lon - from.lon) * rad) * Math.cos(to.lat * rad);
  const x = Math.cos(from.lat * rad) * Math.sin(to.lat * rad)
    - Math.sin(from.lat * rad) * Math.cos(to.lat * rad) * Math.cos((to.lon - from.lon) * rad);
  const deg = (Math.atan2(y, x) / rad + 360) % 360;
  return t(`dir_${['n', 'ne', 'e', 'se', 's', 'sw', 'w', 'nw'][Math.round(deg / 45) % 8]}`);
}

function plannedAt(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(getLang() === 'zh' ? 'zh-CN' : 'en-GB',
    { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

// --- the "Planned" list ----------------------------------------------------------------------------------

function node(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** Wire the list's buttons once; `onSelect(code)` opens a parcel, `onChange()` re-renders the parcel list. */
export function initPlans(hooks) {
  mod.hooks = { ...mod.hooks, ...hooks };
  const box = document.querySelector('#planned-box');
  if (!box) return;
  box.addEventListener('click', (e) => {
    const mode = e.target.closest('button[data-plan-order]');
    if (mode) {
      mod.listOrder = mode.dataset.planOrder;
      mod.hooks.onChange();
      return;
    }
    const pick = e.target.closest('button[data-parcel]');
    if (pick) mod.hooks.onSelect(pick.dataset.parcel);
  });
  const select = document.querySelector('#parcel-order');
  if (select) {
    select.addEventListener('change', async () => {
      mod.order = ORDERS.includes(select.value) ? select.value : 'plan';
      await setMeta(ORDER_KEY, mod.order);
      mod.hooks.onChange();
    });
  }
}

/** Draw the "Planned" list and the parcel-order choice from the app's state ({position, outbox}). */
export function renderPlans(state) {
  const box = document.querySelector('#planned-box');
  if (!box) return;
  const open = openPoints(mod.points, state.outbox);
  const mode = mod.listOrder === 'distance' && state.position ? 'distance' : 'rank';
  const items = orderPoints(open, mode, state.position);
  box.hidden = !mod.points.length;
  box.dataset.count = String(open.length);
  box.dataset.order = mode;
  const head = node('h2', t('planned_n', { n: open.length }));
  const seg = node('div', null, 'seg');
  seg.setAttribute('role', 'group');
  for (const [key, label] of [['rank', t('plan_order_rank')], ['distance', t('plan_order_distance')]]) {
    const b = node('button', label);
    b.type = 'button';
    b.dataset.planOrder = key;
    b.setAttribute('aria-pressed', String(mode === key));
    if (key === 'distance' && !state.position) b.disabled = true;
    seg.append(b);
  }
  const parts = [head, seg];
  if (!state.position) parts.push(node('p', t('plan_no_position'), 'hint plan-hint'));
  if (!open.length) parts.push(node('p', t('plan_all_done'), 'plan-done'));
  const list = node('ol', null, 'cards planned');
  items.forEach((p, i) => {
    const li = node('li');
    const b = node('button', null, `planned-item${i === 0 ? ' next' : ''}`);
    b.type = 'button';
    b.dataset.parcel = p.parcel;
    const title = node('strong', `${mode === 'distance' && i === 0 ? '▶ ' : ''}#${p.rank} ${p.parcel}`);
    let where = '';
    if (p.distance_m != null) where = p.distance_m < 10 ? t('plan_here') : `${formatDistance(p.distance_m)} · ${direction(state.position, p.point)}`;
    const why = t(`plan_reason_${p.reason}`) + (p.sigma ? ` · σ ${p.sigma.analyte} ${Number(p.sigma.value).toPrecision(2)}` : '');
    b.append(title, ...(where ? [node('span', where, 'plan-dist')] : []), node('span', why), node('span', t('plan_planned_at', { t: plannedAt(p.planned_at) }), 'plan-when'));
    const go = node('a', t('plan_navigate'), 'button plan-go');
    go.href = `geo:${p.point.lat},${p.point.lon}?q=${p.point.lat},${p.point.lon}(${encodeURIComponent(p.parcel)})`;
    li.append(b, go);
    list.append(li);
  });
  parts.push(list);
  box.replaceChildren(...parts);
  const select = document.querySelector('#parcel-order');
  if (select) {
    for (const o of select.options) o.textContent = t(`parcel_order_${o.value}`);
    select.value = mod.order;
  }
}
