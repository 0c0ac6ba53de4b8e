// The sampler's field app: provisioning, parcels and map, new samples into the outbox, sync.
// Everything the sampler does is stored in IndexedDB first; the network is only ever a bonus.

import { bbox, centroid, contains, haversine, polygons, projection, rankParcels } from './geo.js';
import { codeName, defaultLang, getLang, setLang, t, translate } from './i18n.js';
import { uuid7 } from './ids.js';
import { compressPhoto } from './photo.js';
import { initPlans, loadPlans, orderParcels, plannedRank, renderPlans } from './plans.js';
import { clearPlaces, done, getAll, getMeta, setMeta, tx } from './store.js';
import { DATA_FIELDS, SyncError, Syncer, localIsoTime } from './sync.js';

const $ = (sel) => document.querySelector(sel);
const DEFAULT_FIELD_CONFIG = {
  land_uses: ['dryland', 'paddy', 'vegetable', 'orchard', 'tea', 'grassland', 'paddy_dryland_rotation'],
  sample_types: ['composite', 'single_point', 'topsoil', 'subsoil', 'profile', 'sediment'],
  photo_max_px: 1600, photo_quality: 0.8, low_accuracy_m: 30, depth_max_cm: 300, max_media: 20, sync_interval_s: 60,
};
const CODE_RE = /^[A-Z0-9][A-Z0-9._/-]*$/;

const state = {
  cfg: DEFAULT_FIELD_CONFIG,
  provisioned: false,
  parcels: [],
  samples: [],
  outbox: [],
  photos: new Map(), // sha256 → {uploaded, bytes, done, error, sample_id}
  position: null,
  positionError: null,
  selected: null,
  parcelTouched: false,
  formPhotos: [],
  editing: null,
  view: 'parcels',
  viewBox: null,
  fullBox: null,
  proj: null,
  retryTimer: null,
  retryDelay: 5,
};

const syncer = new Syncer({ onProgress: (p) => onSyncProgress(p) });

// --- start ------------------------------------------------------------------------------------

async function main() {
  setLang((await getMeta('lang')) || defaultLang());
  translate();
  bindEvents();
  registerServiceWorker();
  await loadFieldConfig();
  const fromLink = await provisionFromFragment();
  await loadAll();
  renderAll();
  startGps();
  window.addEventListener('online', () => {
    renderNet();
    requestSync('online');
  });
  window.addEventListener('offline', renderNet);
  window.addEventListener('hashchange', async () => {
    // A provisioning link opened while the app is already showing.
    if (await provisionFromFragment()) {
      await loadAll();
      renderAll();
      requestSync('provisioned');
    }
  });
  setInterval(() => requestSync('timer'), Math.max(5, state.cfg.sync_interval_s) * 1000);
  if (state.provisioned) requestSync(fromLink ? 'provisioned' : 'start');
}

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker
    .register('sw.js', { scope: './' })
    .catch((err) => console.warn('service worker not registered', err));
  navigator.serviceWorker.ready.then(() => {
    document.body.dataset.offlineReady = 'true';
    renderDevice();
  });
}

async function loadFieldConfig() {
  try {
    const resp = await fetch('config.json');
    if (resp.ok) {
      state.cfg = { ...DEFAULT_FIELD_CONFIG, ...(await resp.json()) };
      await setMeta('field_config', state.cfg);
      return;
    }
  } catch (_) {
    /* offline without a cached copy yet */
  }
  state.cfg = { ...DEFAULT_FIELD_CONFIG, ...((await getMeta('field_config')) || {}) };
}

// --- provisioning -------------------------------------------------------------------------------

/** Read server, device and token from a provisioning link, a bare fragment or a bare token. */
export function parseProvisioning(text) {
  const raw = (text || '').trim();
  if (!raw) return null;
  const hash = raw.includes('#') ? raw.slice(raw.indexOf('#') + 1) : raw.includes('token=') ? raw : null;
  if (hash === null) return /^[A-Za-z0-9_-]{16,}$/.test(raw) ? { token: raw, server: null, device: null } : null;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (!token) return null;
  return { token, server: params.get('server'), device: params.get('device') };
}

async function provisionFromFragment() {
  if (!location.hash || !location.hash.includes('token=')) return false;
  const parsed = parseProvisioning(location.hash);
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, '', location.pathname + location.search);
  if (!parsed) return false;
  const error = await provision(parsed);
  if (error) {
    $('#setup-msg').textContent = error;
    return false;
  }
  return true;
}

async function provision({ token, server, device }) {
  if (server) {
    let origin;
    try {
      origin = new URL(server).origin;
    } catch (_) {
      return t('setup_bad');
    }
    if (origin !== location.origin) return t('setup_other_server', { server: origin });
  }
  const previous = await getMeta('device_id');
  if (previous && device && previous !== device) await clearPlaces();
  await tx(['meta'], 'readwrite', (s) => {
    s.meta.put(token, 'token');
    s.meta.put(location.origin, 'server');
    s.meta.put(device || previous || null, 'device_id');
    s.meta.delete('last_error');
  });
  state.provisioned = true;
  whoAmI();
  return null;
}

async function whoAmI() {
  if (!navigator.onLine) return;
  try {
    const resp = await syncer.api('/api/v1/auth/me');
    if (resp.ok) {
      const me = await resp.json();
      await setMeta('user', me.username);
      if (me.device_id) await setMeta('device_id', me.device_id);
      renderDevice();
    }
  } catch (_) {
    /* shown by the next sync */
  }
}

// --- data -----------------------------------------------------------------------------------------

async function loadAll() {
  state.provisioned = Boolean(await getMeta('token'));
  const [parcels, samples, outbox, photos] = await Promise.all([
    getAll('parcels'), getAll('samples'), getAll('outbox'), photoStatus(),
  ]);
  state.parcels = parcels.filter((p) => !p.deleted).sort((a, b) => a.code.localeCompare(b.code));
  state.samples = samples;
  state.outbox = outbox.sort((a, b) => b.created_at.localeCompare(a.created_at));
  state.photos = photos;
  await loadPlans();
  const box = bbox(state.parcels.map((p) => p.geometry));
  if (box && (!state.fullBox || box.join() !== state.fullBox.join())) {
    state.fullBox = box;
    state.proj = projection(box);
    state.viewBox = null;
  }
}

async function photoStatus() {
  // Everything but the bytes.
  return tx(['photos'], 'readonly', (s) => new Promise((resolve, reject) => {
    const out = new Map();
    const req = s.photos.openCursor();
    req.onsuccess = () => {
      const cursor = req.result;
      if (!cursor) return resolve(out);
      const { sha256, uploaded, bytes, done: ok, error, sample_id: sampleId } = cursor.value;
      out.set(sha256, { uploaded, bytes, done: ok, error, sample_id: sampleId });
      cursor.continue();
    };
    req.onerror = () => reject(req.error);
  }));
}

function parcelByCode(code) {
  return state.parcels.find((p) => p.code === code) || null;
}

// --- sync -------------------------------------------------------------------------------------------

async function requestSync(why) {
  if (!state.provisioned) return;
  if (!navigator.onLine) {
    renderNet();
    return;
  }
  const pending = state.outbox.some((r) => r.status === 'pending') || [...state.photos.values()].some((p) => !p.done);
  const last = await getMeta('last_sync');
  const stale = !last || Date.now() - Date.parse(last) > state.cfg.sync_interval_s * 1000;
  if (why === 'timer' && !pending && !stale) return;
  if (syncer.running) {
    state.again = true; // something changed while a sync runs: run once more when it ends
    return;
  }
  clearTimeout(state.retryTimer);
  setSyncMsg(t('syncing'), 'busy');
  try {
    await syncer.sync();
    state.retryDelay = 5;
    setSyncMsg(t('sync_ok'), 'ok');
  } catch (err) {
    state.again = false;
    handleSyncError(err);
  }
  await loadAll();
  renderAll();
  if (state.again) {
    state.again = false;
    requestSync('again');
  }
}

function handleSyncError(err) {
  const kind = err instanceof SyncError ? err.kind : 'other';
  setMeta('last_error', { kind, message: String(err.message || err), at: new Date().toISOString() });
  if (kind === 'auth') {
    setSyncMsg(t('sync_auth'), 'error');
    return;
  }
  setSyncMsg(kind === 'offline' ? t('sync_offline') : kind === 'busy' ? t('sync_busy') : t('sync_error', { msg: err.message }),
    'error');
  // Retry on our own with a growing delay: the 'online' event does not fire when the link flaps.
  state.retryTimer = setTimeout(() => requestSync('retry'), state.retryDelay * 1000);
  state.retryDelay = Math.min(state.retryDelay * 2, Math.max(5, state.cfg.sync_interval_s));
}

function onSyncProgress(p) {
  if (p.step === 'photo') {
    const photo = state.photos.get(p.sha256);
    if (photo) photo.uploaded = p.offset;
    setSyncMsg(t('photo_partial', { pct: Math.floor((100 * p.offset) / p.total) }), 'busy');
  }
}

function setSyncMsg(text, kind) {
  const el = $('#sync-msg');
  el.textContent = text;
  el.dataset.kind = kind;
}

// --- GPS ---------------------------------------------------------------------------------------------

function startGps() {
  if (!('geolocation' in navigator)) {
    state.positionError = 'unavailable';
    return;
  }
  navigator.geolocation.watchPosition(
    (pos) => {
      state.position = {
        lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: pos.coords.accuracy, at: pos.timestamp,
      };
      state.positionError = null;
      renderGps();
      renderMapPosition();
      renderPlans(state);
      suggestParcel();
    },
    (err) => {
      state.positionError = err.code === 1 ? 'denied' : 'unavailable';
      renderGps();
    },
    { enableHighAccuracy: true, maximumAge: 5000, timeout: 120000 },
  );
}

function suggestParcel() {
  if (!state.position || state.parcelTouched || state.editing) return;
  const ranked = rankParcels(state.parcels, state.position.lat, state.position.lon);
  if (!ranked.length) return;
  renderParcelOptions(ranked);
  $('#f-parcel').value = ranked[0].parcel.code;
  onParcelChosen();
  const best = ranked[0];
  $('#parcel-hint').textContent = best.inside
    ? t('parcel_inside', { code: best.parcel.code })
    : t('parcel_nearest', { code: best.parcel.code, d: Math.round(best.distance_m) });
  $('#parcel-hint').dataset.suggested = best.parcel.code;
}

// --- rendering ----------------------------------------------------------------------------------------

function renderAll() {
  $('#setup').hidden = state.provisioned;
  $('#setup').dataset.shown = String(!state.provisioned);
  $('#tabs').hidden = !state.provisioned;
  for (const id of ['#sync-now', '#pending', '#lastsync']) $(id).hidden = !state.provisioned;
  for (const view of ['parcels', 'new', 'outbox', 'device']) {
    $(`#view-${view}`).hidden = !state.provisioned || state.view !== view;
  }
  for (const b of document.querySelectorAll('#tabs button')) b.setAttribute('aria-current', String(b.dataset.view === state.view));
  renderNet();
  renderCounts();
  renderParcels();
  renderPlans(state);
  renderMap();
  renderForm();
  renderRecords();
  renderDevice();
  renderGps();
}

function renderNet() {
  const net = $('#net');
  net.textContent = navigator.onLine ? t('online') : t('offline');
  net.dataset.online = String(navigator.onLine);
}

async function renderCounts() {
  const records = state.outbox.filter((r) => r.status === 'pending').length;
  const photos = [...state.photos.values()].filter((p) => !p.done).length;
  const el = $('#pending');
  el.dataset.records = String(records);
  el.dataset.photos = String(photos);
  el.textContent = t('pending_n', { n: records }) + (photos ? ` · ${t('photos')} ${photos}` : '');
  const last = await getMeta('last_sync');
  $('#lastsync').textContent = last ? t('last_sync', { t: shortTime(last) }) : t('never_synced');
  $('#lastsync').dataset.at = last || '';
}

function shortTime(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(getLang() === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString(getLang() === 'zh' ? 'zh-CN' : 'en-GB', { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function mineOn(code) {
  return state.outbox.filter((r) => r.data.parcel === code);
}

function teamOn(code) {
  return state.samples.filter((s) => s.parcel === code && !s.deleted);
}

function parcelClass(code) {
  const mine = mineOn(code);
  if (mine.some((r) => r.status === 'conflict' || r.status === 'rejected')) return 'p-problem';
  if (mine.some((r) => r.status === 'pending')) return 'p-pending';
  if (mine.length || teamOn(code).length) return 'p-sampled';
  return 'p-open';
}

function renderParcels() {
  $('#parcel-count').textContent = state.parcels.length ? t('parcels_n', { n: state.parcels.length }) : t('no_parcels');
  $('#parcel-count').dataset.count = String(state.parcels.length);
  const list = $('#parcel-list');
  list.replaceChildren(
    ...orderParcels(state.parcels, state.position).map((p) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `parcel ${parcelClass(p.code)}`;
      button.dataset.code = p.code;
      const n = new Set([...mineOn(p.code).map((r) => r.id), ...teamOn(p.code).map((s) => s.id)]).size;
      button.append(
        el('strong', p.code),
        el('span', `${codeName(p.land_use)} · ${p.area_m2 ? Math.round(p.area_m2).toLocaleString() + ' m²' : ''}`),
        el('span', t('samples_n', { n })),
      );
      if (plannedRank(p.code)) button.append(el('span', t('planned_rank', { n: plannedRank(p.code) }), 'plan-rank'));
      li.append(button);
      return li;
    }),
  );
  renderParcelInfo();
}

function renderParcelInfo() {
  const box = $('#parcel-info');
  const p = parcelByCode(state.selected);
  if (!p) {
    box.replaceChildren();
    return;
  }
  const go = document.createElement('button');
  go.type = 'button';
  go.className = 'big primary';
  go.id = 'sample-here';
  go.textContent = t('sample_here');
  go.addEventListener('click', () => {
    state.parcelTouched = true;
    showView('new');
    $('#f-parcel').value = p.code;
    onParcelChosen();
  });
  const n = new Set([...mineOn(p.code).map((r) => r.id), ...teamOn(p.code).map((s) => s.id)]).size;
  box.replaceChildren(el('p', `${p.code} · ${codeName(p.land_use)} · ${t('samples_n', { n })}`), go);
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function renderMap() {
  const map = $('#map');
  if (!state.proj) {
    map.replaceChildren();
    return;
  }
  const { x, y, width, height } = state.proj;
  const pad = Math.max(width, height) * 0.04 + 10;
  state.fullViewBox = [-pad, -pad, width + 2 * pad, height + 2 * pad];
  if (!state.viewBox) state.viewBox = [...state.fullViewBox];
  map.setAttribute('viewBox', state.viewBox.join(' '));
  const group = svg('g', { id: 'parcels-layer' });
  for (const p of state.parcels) {
    const d = polygons(p.geometry)
      .map((rings) => rings.map((ring) => 'M' + ring.map(([lon, lat]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join('L') + 'Z').join(''))
      .join('');
    const path = svg('path', {
      d, class: `${parcelClass(p.code)}${p.code === state.selected ? ' selected' : ''}`, 'data-code': p.code,
      'vector-effect': 'non-scaling-stroke', 'fill-rule': 'evenodd',
    });
    const title = svg('title');
    title.textContent = p.code;
    path.append(title);
    group.append(path);
  }
  const labels = svg('g', { id: 'labels-layer' });
  if (state.parcels.length <= 150) {
    const size = state.viewBox[2] / 22; // about 16 px whatever the zoom
    for (const p of state.parcels) {
      const [clat, clon] = centroid(p.geometry);
      const text = svg('text', { x: x(clon).toFixed(1), y: y(clat).toFixed(1), 'font-size': size.toFixed(1), class: 'map-label',
        'text-anchor': 'middle', 'dominant-baseline': 'middle' });
      text.textContent = p.code.split('-').pop();
      labels.append(text);
    }
  }
  map.replaceChildren(group, labels, svg('g', { id: 'me-layer' }));
  renderMapPosition();
}

function renderMapPosition() {
  const layer = $('#me-layer');
  if (!layer || !state.proj) return;
  layer.replaceChildren();
  if (!state.position) return;
  const { lat, lon, accuracy_m: acc } = state.position;
  const cx = state.proj.x(lon);
  const cy = state.proj.y(lat);
  const vb = state.viewBox || [0, 0, 100, 100];
  const dot = Math.max(vb[2], vb[3]) / 60;
  layer.append(
    svg('circle', { cx, cy, r: Math.max(acc, dot), class: 'me-accuracy', 'vector-effect': 'non-scaling-stroke' }),
    svg('circle', { cx, cy, r: dot, class: 'me', id: 'me-dot', 'vector-effect': 'non-scaling-stroke' }),
  );
}

function zoom(factor, centre) {
  if (!state.viewBox) return;
  const [vx, vy, vw, vh] = state.viewBox;
  const [cx, cy] = centre || [vx + vw / 2, vy + vh / 2];
  const w = Math.min(Math.max(vw * factor, 20), state.fullViewBox[2] * 4);
  const h = (vh / vw) * w;
  state.viewBox = [cx - w / 2, cy - h / 2, w, h];
  renderMap();
}

function renderParcelOptions(ranked) {
  const select = $('#f-parcel');
  const current = select.value;
  const order = ranked ? ranked.map((r) => r.parcel) : state.parcels;
  const distance = new Map((ranked || []).map((r) => [r.parcel.code, r]));
  select.replaceChildren(
    ...order.map((p) => {
      const r = distance.get(p.code);
      const suffix = r ? (r.inside ? ' ✓' : ` · ${formatDistance(r.distance_m)}`) : '';
      const option = new Option(`${p.code} · ${codeName(p.land_use)}${suffix}`, p.code);
      return option;
    }),
  );
  if (current && parcelByCode(current)) select.value = current;
}

function formatDistance(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

function renderForm() {
  if (!$('#f-parcel').options.length || $('#f-parcel').options.length !== state.parcels.length) {
    renderParcelOptions(state.position ? rankParcels(state.parcels, state.position.lat, state.position.lon) : null);
  }
  fillSelect($('#f-type'), state.cfg.sample_types);
  fillSelect($('#f-landuse'), state.cfg.land_uses);
  $('#cancel-edit').hidden = !state.editing;
  renderThumbs();
}

function fillSelect(select, codes) {
  const current = select.value;
  select.replaceChildren(...codes.map((c) => new Option(codeName(c), c)));
  if (codes.includes(current)) select.value = current;
}

function onParcelChosen() {
  const p = parcelByCode($('#f-parcel').value);
  if (p && p.land_use && !state.editing) $('#f-landuse').value = p.land_use;
}

function renderGps() {
  const box = $('#gps-box');
  const pos = state.position;
  box.classList.remove('warn', 'ok');
  if (!pos) {
    box.textContent = state.positionError === 'denied' ? t('gps_denied') : t('gps_waiting');
    box.dataset.state = state.positionError || 'waiting';
    box.classList.add('warn');
    return;
  }
  const acc = Math.round(pos.accuracy_m);
  const text = `${t('gps')}: ${t('gps_fix', { lat: pos.lat.toFixed(6), lon: pos.lon.toFixed(6), acc })}`;
  if (pos.accuracy_m > state.cfg.low_accuracy_m) {
    box.textContent = `${text} — ${t('gps_low', { acc, max: state.cfg.low_accuracy_m })}`;
    box.dataset.state = 'low';
    box.classList.add('warn');
  } else {
    box.textContent = text;
    box.dataset.state = 'ok';
    box.classList.add('ok');
  }
}

function renderThumbs() {
  const thumbs = $('#thumbs');
  for (const img of thumbs.querySelectorAll('img')) URL.revokeObjectURL(img.src);
  thumbs.replaceChildren(
    ...state.formPhotos.map((p, i) => {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = URL.createObjectURL(new Blob([p.data], { type: p.mime }));
      img.alt = `photo ${i + 1}`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '×';
      remove.className = 'remove';
      remove.setAttribute('aria-label', 'remove');
      remove.addEventListener('click', () => {
        state.formPhotos.splice(i, 1);
        renderThumbs();
      });
      const cap = el('figcaption', t('photo_size', { w: p.width, h: p.height, kb: Math.round(p.bytes / 1024) }));
      fig.append(img, cap, remove);
      return fig;
    }),
  );
  thumbs.dataset.count = String(state.formPhotos.length);
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

const COMPARE = ['code', 'parcel', 'collected_at', 'location', 'depth', 'sample_type', 'land_use_observed', 'note', 'photos'];

function fieldValue(data, name) {
  if (!data) return '—';
  if (name === 'depth') return `${data.depth_top_cm ?? '?'}–${data.depth_bottom_cm ?? '?'} cm`;
  if (name === 'location') {
    const l = data.location;
    return l ? `${Number(l.lat).toFixed(6)}, ${Number(l.lon).toFixed(6)} ±${Math.round(l.accuracy_m)} m` : '—';
  }
  if (name === 'photos') return String((data.media || []).length);
  if (name === 'sample_type' || name === 'land_use_observed') return codeName(data[name]) || '—';
  return data[name] === null || data[name] === undefined || data[name] === '' ? '—' : String(data[name]);
}

function serverVersionOf(record) {
  const result = record.result || {};
  if (result.code === 'duplicate_sample_code') {
    return state.samples.find((s) => s.code === record.data.code && s.id !== record.id) || null;
  }
  return state.samples.find((s) => s.id === record.id) || null;
}

function renderRecords() {
  const list = $('#records');
  if (!state.outbox.length) {
    list.replaceChildren(el('li', t('outbox_empty'), 'empty'));
    return;
  }
  list.replaceChildren(...state.outbox.map(recordCard));
}

function recordCard(r) {
  const li = document.createElement('li');
  li.className = `record s-${r.status}`;
  li.dataset.id = r.id;
  li.dataset.status = r.status;
  li.dataset.code = r.data.code;
  const head = el('div', undefined, 'record-head');
  const badge = el('span', t(`status_${r.status}`), `badge b-${r.status}`);
  badge.dataset.status = r.status;
  head.append(el('strong', r.data.code), badge);
  li.append(head, el('p', `${r.data.parcel} · ${shortTime(r.created_at)} · ${fieldValue(r.data, 'depth')}`));
  const shas = (r.data.media || []).map((m) => m.sha256);
  if (shas.length) {
    const known = shas.map((s) => state.photos.get(s)).filter(Boolean);
    const ok = known.filter((p) => p.done).length;
    const partial = known.find((p) => !p.done && p.uploaded > 0);
    const line = el('p', t('photos_progress', { done: ok, n: shas.length }), 'photos-line');
    line.dataset.done = String(ok);
    line.dataset.total = String(shas.length);
    if (partial) line.textContent += ` · ${t('photo_partial', { pct: Math.floor((100 * partial.uploaded) / partial.bytes) })}`;
    li.append(line);
  }
  if (r.server_state && r.status !== 'pending') {
    const s = el('p', `${t('server')}: ${t(`state_${r.server_state}`)}`, 'server-state');
    s.dataset.state = r.server_state;
    li.append(s);
  }
  const server = state.samples.find((s) => s.id === r.id);
  if (server && server.flags && server.flags.length) {
    li.append(el('p', server.flags.map((f) => t(`flag_${f}`)).join(' · '), 'flags'));
  }
  const result = r.result || {};
  if (r.status === 'rejected' || r.status === 'conflict') {
    const reason = el('div', undefined, 'reason');
    const code = result.code || '?';
    const why = t(`why_${code}`);
    const text = (why === `why_${code}` ? code : `${why} (${code})`) + (result.message ? ` — ${result.message}` : '');
    reason.append(el('p', t('reason', { code: text })));
    for (const [field, messages] of Object.entries(result.errors || {})) {
      reason.append(el('p', `${field}: ${[].concat(messages).map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('; ')}`));
    }
    li.append(reason);
  }
  if (r.status === 'conflict') li.append(conflictTable(r, serverVersionOf(r)));
  if (['pending', 'rejected', 'conflict', 'sent', 'held'].includes(r.status)) {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'small';
    edit.textContent = t('edit');
    edit.addEventListener('click', () => startEdit(r));
    li.append(edit);
  }
  return li;
}

function conflictTable(record, server) {
  const wrap = el('div', undefined, 'conflict');
  wrap.append(el('p', t('conflict_title'), 'conflict-title'));
  const table = document.createElement('table');
  const head = document.createElement('tr');
  head.append(el('th', t('field')), el('th', t('this_phone')), el('th', t('server')));
  table.append(head);
  const hard = new Set(record.result && record.result.hard_fields ? record.result.hard_fields : []);
  for (const name of COMPARE) {
    const mine = fieldValue(record.data, name);
    const theirs = server ? fieldValue(server, name) : '—';
    const tr = document.createElement('tr');
    tr.dataset.field = name;
    if (mine !== theirs || hard.has(name)) tr.className = 'differs';
    tr.append(el('th', t(`f_${name}`)), el('td', mine, 'mine'), el('td', theirs, 'theirs'));
    table.append(tr);
  }
  wrap.append(table);
  return wrap;
}

async function renderDevice() {
  const [device, user] = await Promise.all([getMeta('device_id'), getMeta('user')]);
  $('#device-who').textContent = t('provisioned_as', { device: device || '?', user: user || '?' });
  const ready = document.body.dataset.offlineReady === 'true';
  $('#offline-ready').textContent = ready ? t('offline_ready') : t('offline_not_ready');
}

// --- the sample form ---------------------------------------------------------------------------------------

function number(text) {
  const s = String(text).trim().replace(',', '.');
  return /^[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : null;
}

function readForm() {
  const errors = {};
  const code = $('#f-code').value.normalize('NFKC').trim().toUpperCase();
  if (!code) errors.code = t('err_required');
  else if (!CODE_RE.test(code) || code.length > 64) errors.code = t('err_code');
  else {
    const id = state.editing && state.editing.id;
    const used = state.outbox.some((r) => r.data.code === code && r.id !== id) || state.samples.some((s) => s.code === code && s.id !== id && !s.deleted);
    if (used) errors.code = t('err_code_used');
  }
  const max = state.cfg.depth_max_cm;
  const top = number($('#f-top').value);
  const bottom = number($('#f-bottom').value);
  if (top === null || top > max) errors.top = t('err_depth', { max });
  if (bottom === null || bottom > max) errors.bottom = t('err_depth', { max });
  else if (top !== null && bottom <= top) errors.bottom = t('err_depth_order');
  const parcel = $('#f-parcel').value;
  if (!parcel) errors.parcel = t('err_required');
  return { errors, code, top, bottom, parcel };
}

function showErrors(errors) {
  $('#err-code').textContent = errors.code || '';
  $('#err-top').textContent = errors.top || '';
  $('#err-bottom').textContent = errors.bottom || '';
}

async function saveSample(event) {
  event.preventDefault();
  const form = readForm();
  showErrors(form.errors);
  const msg = $('#form-msg');
  msg.className = '';
  if (Object.keys(form.errors).length) {
    msg.textContent = Object.values(form.errors)[0];
    msg.className = 'error';
    return;
  }
  const editing = state.editing;
  const location = editing ? editing.data.location : state.position && {
    lat: state.position.lat, lon: state.position.lon, accuracy_m: Math.round(state.position.accuracy_m * 10) / 10, mock: false,
  };
  if (!location) {
    msg.textContent = t('need_gps');
    msg.className = 'error';
    return;
  }
  const earlier = editing ? editing.data.media || [] : [];
  const photos = state.formPhotos;
  const media = [
    ...earlier,
    ...photos.filter((p) => !earlier.some((m) => m.sha256 === p.sha256)).map((p, i) => ({
      name: `photo${earlier.length + i + 1}.jpg`, sha256: p.sha256, bytes: p.bytes, mime: p.mime,
    })),
  ];
  const data = {
    code: form.code, parcel: form.parcel, collected_at: editing ? editing.data.collected_at : localIsoTime(), location,
    depth_top_cm: form.top, depth_bottom_cm: form.bottom, sample_type: $('#f-type').value,
    land_use_observed: $('#f-landuse').value || null, note: $('#f-note').value.trim() || null, media,
  };
  const id = editing ? editing.id : uuid7();
  // The record and its photos go into the outbox in one transaction: all of it or nothing.
  await tx(['outbox', 'photos'], 'readwrite', async (s) => {
    const before = await done(s.outbox.get(id));
    const record = before || { id, created_at: new Date().toISOString(), rev: 0, base_version: null };
    record.data = data;
    record.rev += 1;
    record.status = 'pending';
    record.result = before && before.status === 'pending' ? before.result : record.result || null;
    s.outbox.put(record);
    for (const [i, p] of photos.entries()) {
      const have = await done(s.photos.get(p.sha256));
      if (!have) {
        s.photos.put({
          sha256: p.sha256, sample_id: id, name: media.find((m) => m.sha256 === p.sha256).name || `photo${i + 1}.jpg`,
          data: p.data, bytes: p.bytes, mime: p.mime, width: p.width, height: p.height, uploaded: 0, done: false,
        });
      }
    }
  });
  resetForm();
  msg.textContent = t('saved');
  msg.className = 'ok';
  await loadAll();
  renderAll();
  requestSync('saved');
}

function resetForm() {
  state.editing = null;
  state.formPhotos = [];
  state.parcelTouched = false;
  $('#f-code').value = '';
  $('#f-note').value = '';
  $('#f-photos').value = '';
  showErrors({});
  renderThumbs();
  $('#cancel-edit').hidden = true;
  suggestParcel();
}

function startEdit(record) {
  state.editing = record;
  state.formPhotos = [];
  showView('new');
  const d = record.data;
  if (![...$('#f-parcel').options].some((o) => o.value === d.parcel)) $('#f-parcel').append(new Option(d.parcel, d.parcel));
  $('#f-parcel').value = d.parcel;
  $('#f-code').value = d.code;
  $('#f-top').value = d.depth_top_cm;
  $('#f-bottom').value = d.depth_bottom_cm;
  $('#f-type').value = d.sample_type;
  $('#f-landuse').value = d.land_use_observed || '';
  $('#f-note').value = d.note || '';
  $('#cancel-edit').hidden = false;
  $('#form-msg').textContent = '';
}

async function addPhotos(files) {
  const msg = $('#form-msg');
  for (const file of files) {
    if (state.formPhotos.length + ((state.editing && state.editing.data.media) || []).length >= state.cfg.max_media) break;
    try {
      const photo = await compressPhoto(file, state.cfg.photo_max_px, state.cfg.photo_quality);
      if (!state.formPhotos.some((p) => p.sha256 === photo.sha256)) state.formPhotos.push(photo);
    } catch (err) {
      msg.textContent = String(err.message || err);
      msg.className = 'error';
    }
  }
  $('#f-photos').value = '';
  renderThumbs();
}

// --- barcode / QR scanning (where the browser has BarcodeDetector) --------------------------------------------

async function scan(video, formats) {
  const detector = new window.BarcodeDetector({ formats });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  try {
    for (let i = 0; i < 600; i += 1) {
      const found = await detector.detect(video);
      if (found.length) return found[0].rawValue;
      await new Promise((r) => setTimeout(r, 100));
    }
    return null;
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    video.hidden = true;
  }
}

// --- navigation and events -----------------------------------------------------------------------------------

function showView(view) {
  state.view = view;
  renderAll();
  window.scrollTo(0, 0);
}

function bindEvents() {
  initPlans({ onSelect: (code) => selectParcel(code), onChange: () => { renderParcels(); renderPlans(state); } });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showView(b.dataset.view));
  const toggleLang = async () => {
    setLang(getLang() === 'zh' ? 'en' : 'zh');
    await setMeta('lang', getLang());
    translate();
    renderAll();
  };
  $('#lang').addEventListener('click', toggleLang);
  $('#lang-2').addEventListener('click', toggleLang);
  $('#sync-now').addEventListener('click', () => requestSync('button'));
  $('#sync-now-2').addEventListener('click', () => requestSync('button'));
  $('#setup-save').addEventListener('click', async () => {
    const parsed = parseProvisioning($('#setup-link').value);
    const error = parsed ? await provision(parsed) : t('setup_bad');
    $('#setup-msg').textContent = error || '';
    if (!error) {
      $('#setup-link').value = '';
      await loadAll();
      renderAll();
      requestSync('provisioned');
    }
  });
  $('#reprovision').addEventListener('click', () => {
    state.provisioned = false;
    renderAll();
  });
  const canScan = 'BarcodeDetector' in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
  $('#setup-scan').hidden = !canScan;
  $('#scan-code').hidden = !canScan;
  if (canScan) {
    $('#setup-scan').addEventListener('click', async () => {
      const text = await scan($('#scan-video'), ['qr_code']).catch(() => null);
      if (text) {
        $('#setup-link').value = text;
        $('#setup-save').click();
      }
    });
    $('#scan-code').addEventListener('click', async () => {
      const text = await scan($('#code-video'), ['code_128', 'code_39', 'ean_13', 'qr_code', 'data_matrix']).catch(() => null);
      if (text) $('#f-code').value = text.normalize('NFKC').trim().toUpperCase();
    });
  }
  $('#show-map').addEventListener('click', () => {
    $('#map-wrap').hidden = false;
    $('#parcel-list').hidden = true;
    $('#show-map').setAttribute('aria-pressed', 'true');
    $('#show-list').setAttribute('aria-pressed', 'false');
  });
  $('#show-list').addEventListener('click', () => {
    $('#map-wrap').hidden = true;
    $('#parcel-list').hidden = false;
    $('#show-map').setAttribute('aria-pressed', 'false');
    $('#show-list').setAttribute('aria-pressed', 'true');
  });
  $('#map').addEventListener('click', (e) => {
    const code = e.target.closest('[data-code]') && e.target.closest('[data-code]').dataset.code;
    if (code) selectParcel(code);
  });
  $('#parcel-list').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-code]');
    if (button) selectParcel(button.dataset.code);
  });
  $('#zoom-in').addEventListener('click', () => zoom(0.5));
  $('#zoom-out').addEventListener('click', () => zoom(2));
  $('#zoom-fit').addEventListener('click', () => {
    state.viewBox = null;
    renderMap();
  });
  $('#zoom-me').addEventListener('click', () => {
    if (state.position && state.proj) zoom(state.viewBox[2] > 600 ? 600 / state.viewBox[2] : 1, [state.proj.x(state.position.lon), state.proj.y(state.position.lat)]);
  });
  $('#f-parcel').addEventListener('change', () => {
    state.parcelTouched = true;
    onParcelChosen();
    const p = parcelByCode($('#f-parcel').value);
    if (p && state.position) {
      const inside = contains(p.geometry, state.position.lat, state.position.lon);
      const far = haversine(state.position.lat, state.position.lon, ...centroid(p.geometry));
      $('#parcel-hint').textContent = inside ? t('parcel_inside', { code: p.code }) : t('parcel_nearest', { code: p.code, d: Math.round(far) });
    }
  });
  $('#f-photos').addEventListener('change', (e) => addPhotos([...e.target.files]));
  $('#sample-form').addEventListener('submit', saveSample);
  $('#cancel-edit').addEventListener('click', () => {
    resetForm();
    showView('outbox');
  });
}

function selectParcel(code) {
  state.selected = code;
  renderMap();
  renderParcelInfo();
}

// Exposed for tests and debugging in the console; the app never reads it.
window.fieldApp = { state, syncNow: () => requestSync('button'), DATA_FIELDS };

main().catch((err) => {
  console.error(err);
  setSyncMsg(String(err.message || err), 'error');
});
