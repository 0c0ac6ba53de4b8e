// The sampler's field app: provisioning, parcels and map, new samples into the outbox, sync.
// Everything the sampler does is stored in IndexedDB first; the network is only ever a bonus.

import { answerText, labelOf, rawAnswers, readExtra, renderExtra } from './extra.js';
import { FieldMap, orderPlanned } from './fieldmap.js';
import { bbox, centroid, contains, haversine, rankParcels } from './geo.js';
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
  ext: null, // the form extension's questions now served ({version, questions}), from the last sync
  extDefs: {}, // every extension version seen, so a draft is edited with the questions it was answered in
  extraPhotos: {}, // image question → the photo chosen for it in the open form
  extraKey: null, // what the "More questions" box was last drawn for (version, language, record)
  editing: null,
  view: 'parcels',
  fullBox: null,
  map: null, // the FieldMap, made when the parcels view is first shown with the library loaded
  mapMode: 'sampling',
  planned: [],
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
  state.token = await getMeta('token');
  state.provisioned = Boolean(state.token);
  const [parcels, samples, outbox, photos] = await Promise.all([
    getAll('parcels'), getAll('samples'), getAll('outbox'), photoStatus(),
  ]);
  state.parcels = parcels.filter((p) => !p.deleted).sort((a, b) => a.code.localeCompare(b.code));
  state.samples = samples;
  state.outbox = outbox.sort((a, b) => b.created_at.localeCompare(a.created_at));
  state.photos = photos;
  state.planned = await loadPlans();
  state.fullBox = bbox(state.parcels.map((p) => p.geometry));
  const syncConfig = (await getMeta('sync_config')) || {};
  state.ext = syncConfig.form_extension || null;
  state.extDefs = (await getMeta('form_extensions')) || {};
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
  setSyncMsg(t('syncing'), 'busy', 'syncing');
  let synced = false;
  try {
    await syncer.sync();
    state.retryDelay = 5;
    setSyncMsg(t('sync_ok'), 'ok', 'sync_ok');
    synced = true;
  } catch (err) {
    state.again = false;
    handleSyncError(err);
  }
  await loadAll();
  renderAll();
  if (synced) {
    if (state.map) state.map.reload();
    cacheTiles(why === 'provisioned');
  }
  if (state.again) {
    state.again = false;
    requestSync('again');
  }
}

function handleSyncError(err) {
  const kind = err instanceof SyncError ? err.kind : 'other';
  setMeta('last_error', { kind, message: String(err.message || err), at: new Date().toISOString() });
  if (kind === 'auth') {
    setSyncMsg(t('sync_auth'), 'error', 'sync_auth');
    return;
  }
  const key = kind === 'offline' ? 'sync_offline' : kind === 'busy' ? 'sync_busy' : 'sync_error';
  setSyncMsg(t(key, { msg: err.message }), 'error', key, { msg: err.message });
  // Retry on our own with a growing delay: the 'online' event does not fire when the link flaps.
  state.retryTimer = setTimeout(() => requestSync('retry'), state.retryDelay * 1000);
  state.retryDelay = Math.min(state.retryDelay * 2, Math.max(5, state.cfg.sync_interval_s));
}

function onSyncProgress(p) {
  if (p.step === 'photo') {
    const photo = state.photos.get(p.sha256);
    if (photo) photo.uploaded = p.offset;
    const vars = { pct: Math.floor((100 * p.offset) / p.total) };
    setSyncMsg(t('photo_partial', vars), 'busy', 'photo_partial', vars);
  }
}

// The last sync message by its catalogue key, so switching the language re-words it ("同步完成" →
// "Sync complete"); a message without a key (a server's own text) stays as it came.
let syncMsg = null;

function setSyncMsg(text, kind, key = null, vars = {}) {
  const el = $('#sync-msg');
  el.textContent = text;
  el.dataset.kind = kind;
  syncMsg = key ? { key, vars } : null;
}

function retranslateSyncMsg() {
  if (syncMsg) $('#sync-msg').textContent = t(syncMsg.key, syncMsg.vars);
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
  // Not set up and offline: say what to do instead of a set-up screen that cannot finish yet.
  $('#setup-offline').hidden = navigator.onLine || state.provisioned;
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

// --- the map (fieldmap.js) and its offline tiles (sw.js) ---------------------------------------------

/** The parcels this phone has recorded a sample on (their planned points are done). */
function sampledHere() {
  return new Set(state.outbox.filter((r) => !r.deleted).map((r) => r.data && r.data.parcel));
}

/** This phone's own records on a parcel, which the server's tiles do not know yet. */
function localState(code) {
  const c = parcelClass(code);
  return c === 'p-problem' ? 'problem' : c === 'p-pending' ? 'pending' : null;
}

function renderMap() {
  const target = $('#map');
  if (!state.map) {
    if (!state.provisioned || $('#view-parcels').hidden || $('#map-wrap').hidden) return;
    if (!window.ol || !state.cfg.map) {
      target.dataset.state = 'no-library';
      return;
    }
    state.map = new FieldMap(target, {
      cfg: state.cfg.map, token: () => state.token, lang: getLang, localState, onSelect: selectParcel,
    });
    state.map.setMode(state.mapMode);
  }
  if (state.labelled !== state.parcels) {
    state.labelled = state.parcels;
    state.map.setLocalParcels(state.parcels);
    state.map.setLabels(state.parcels.map((p) => {
      const [lat, lon] = centroid(p.geometry);
      return { code: p.code, lat, lon };
    }));
  }
  state.map.map.updateSize();
  state.map.select(state.selected);
  state.map.fit(state.fullBox);
  renderMapPosition();
  renderLegend();
}

function renderMapPosition() {
  if (!state.map) return;
  state.map.setPosition(state.position);
  state.map.setPlanned(orderPlanned(state.planned, state.position, sampledHere()));
  renderLegend();
}

function renderLegend() {
  const colours = { ...state.cfg.map.colours[state.mapMode] };
  if (state.mapMode === 'sampling') Object.assign(colours, { pending: '#f2b705', problem: '#d62d20' });
  const items = Object.entries(colours).map(([key, colour]) => {
    const span = el('span', t(`map_${key}`));
    const swatch = document.createElement('i');
    swatch.style.background = colour;
    span.prepend(swatch);
    return span;
  });
  $('#map-legend').replaceChildren(...items);
  const open = orderPlanned(state.planned, state.position, sampledHere());
  const next = open[0];
  $('#map-next').textContent = next
    ? (next.distance_m == null ? t('map_next', { code: next.parcel }) : t('map_next_d', { code: next.parcel, d: formatDistance(next.distance_m) }))
    : '';
  $('#map-next').dataset.parcel = next ? next.parcel : '';
  if (open.length) $('#map-legend').append(el('span', `▲ ${t('map_planned', { n: open.length })}`));
  $('#map-mode').textContent = state.mapMode === 'sampling' ? t('map_by_grade') : t('map_by_state');
}

/** Ask the service worker to keep the assignment area's tiles (after provisioning and syncs). */
async function cacheTiles(force) {
  const m = state.cfg.map;
  if (!m || !state.fullBox || !('serviceWorker' in navigator)) return;
  const last = (await getMeta('tile_cache')) || {};
  const pad = 0.1 * Math.max(state.fullBox[2] - state.fullBox[0], state.fullBox[3] - state.fullBox[1], 0.002);
  const box = [state.fullBox[0] - pad, state.fullBox[1] - pad, state.fullBox[2] + pad, state.fullBox[3] + pad];
  const fresh = last.box === box.join() && last.at && Date.now() - Date.parse(last.at) < 15 * 60 * 1000;
  if (fresh && !force) return;
  const reg = await navigator.serviceWorker.ready;
  if (!reg.active) return;
  await setMeta('tile_cache', { ...last, box: box.join(), requested: new Date().toISOString() });
  reg.active.postMessage({
    type: 'cache-tiles', token: state.token, bbox: box, tiles: m.tiles, layers: m.layers,
    basemap: m.basemap && m.basemap.offline ? m.basemap.url : null, ...m.offline,
  });
}

async function onWorkerMessage(event) {
  const msg = event.data || {};
  if (msg.type !== 'tiles-cached' || msg.error) return;
  const last = (await getMeta('tile_cache')) || {};
  await setMeta('tile_cache', { ...last, ...msg });
  document.body.dataset.tilesCached = String(msg.tiles);
  renderDevice();
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
  renderExtraBox();
}

/** The extension the open form asks: the one a draft was answered in, else the one served now. */
function extensionFor(record) {
  const v = record && record.data.extension_version;
  return (v && (state.extDefs[v] || (state.ext && state.ext.version === v ? state.ext : null))) || state.ext;
}

function renderExtraBox(force = false) {
  const box = $('#extra-box');
  const def = extensionFor(state.editing);
  const key = `${def ? def.version : ''}|${getLang()}|${state.editing ? state.editing.id : ''}`;
  if (key === state.extraKey && !force) return;
  const sameForm = state.extraKey && state.extraKey.split('|')[2] === key.split('|')[2]
    && box.dataset.version === String(def ? def.version : '');
  const answers = force ? (state.editing && state.editing.data.extra) || {}
    : sameForm ? rawAnswers(box, def) : (state.editing && state.editing.data.extra) || {};
  state.extraKey = key;
  renderExtra(box, def, answers, {
    photoFor: (name) => state.extraPhotos[name] || null,
    position: () => state.position,
    onImage: async (name, file) => {
      try {
        state.extraPhotos[name] = await compressPhoto(file, state.cfg.photo_max_px, state.cfg.photo_quality);
        return true;
      } catch (err) {
        $('#form-msg').textContent = String(err.message || err);
        $('#form-msg').className = 'error';
        return false;
      }
    },
  });
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

const COMPARE = ['code', 'parcel', 'collected_at', 'location', 'depth', 'sample_type', 'land_use_observed', 'note', 'photos',
  'extra'];

function fieldValue(data, name) {
  if (!data) return '—';
  if (name === 'depth') return `${data.depth_top_cm ?? '?'}–${data.depth_bottom_cm ?? '?'} cm`;
  if (name === 'location') {
    const l = data.location;
    return l ? `${Number(l.lat).toFixed(6)}, ${Number(l.lon).toFixed(6)} ±${Math.round(l.accuracy_m)} m` : '—';
  }
  if (name === 'photos') return String((data.media || []).length);
  if (name === 'extra') {
    const def = extensionFor({ data });
    const byName = Object.fromEntries(((def && def.questions) || []).map((q) => [q.name, q]));
    const parts = Object.entries(data.extra || {}).map(([k, v]) => {
      const q = byName[k] || { name: k, type: 'text' };
      return `${labelOf(q)}: ${answerText(q, v)}`;
    });
    return parts.length ? parts.join('; ') : '—';
  }
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
  const tiles = await getMeta('tile_cache');
  $('#offline-map').textContent = tiles && tiles.zooms && tiles.zooms.length
    ? t(tiles.full ? 'offline_map_full' : 'offline_map', { n: tiles.tiles, mb: (tiles.bytes / 1048576).toFixed(1),
      z0: tiles.zooms[0], z1: tiles.zooms[tiles.zooms.length - 1] })
    : t('offline_map_none');
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
  const ext = extensionFor(state.editing);
  const extra = readExtra($('#extra-box'), ext);
  for (const [name, message] of Object.entries(extra.errors)) {
    errors[`extra.${name}`] = `${labelOf(ext.questions.find((q) => q.name === name))}: ${message}`;
  }
  return { errors, code, top, bottom, parcel, ext, extra: extra.answers };
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
  const photos = [...state.formPhotos];
  const media = [
    ...earlier,
    ...photos.filter((p) => !earlier.some((m) => m.sha256 === p.sha256)).map((p, i) => ({
      name: `photo${earlier.length + i + 1}.jpg`, sha256: p.sha256, bytes: p.bytes, mime: p.mime,
    })),
  ];
  // A photo answering an image question joins the sample's media under the question's name.
  const extraPhotos = Object.entries(state.extraPhotos).filter(([name]) => form.extra[name] === `${name}.jpg`);
  for (const [name, p] of extraPhotos) {
    const entry = { name: `${name}.jpg`, sha256: p.sha256, bytes: p.bytes, mime: p.mime };
    const at = media.findIndex((m) => m.name === entry.name);
    if (at >= 0) media.splice(at, 1, entry);
    else media.push(entry);
    photos.push(p);
  }
  const data = {
    code: form.code, parcel: form.parcel, collected_at: editing ? editing.data.collected_at : localIsoTime(), location,
    depth_top_cm: form.top, depth_bottom_cm: form.bottom, sample_type: $('#f-type').value,
    land_use_observed: $('#f-landuse').value || null, note: $('#f-note').value.trim() || null, media,
  };
  if (Object.keys(form.extra).length) {
    data.extra = form.extra;
    data.extension_version = form.ext.version;
  }
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
  state.extraPhotos = {};
  state.parcelTouched = false;
  renderExtraBox(true);
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
  state.extraPhotos = {};
  state.extraKey = null;
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
    retranslateSyncMsg();
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
    renderMap();
  });
  $('#show-list').addEventListener('click', () => {
    $('#map-wrap').hidden = true;
    $('#parcel-list').hidden = false;
    $('#show-map').setAttribute('aria-pressed', 'false');
    $('#show-list').setAttribute('aria-pressed', 'true');
  });
  $('#map-mode').addEventListener('click', () => {
    state.mapMode = state.mapMode === 'sampling' ? 'grade' : 'sampling';
    if (state.map) state.map.setMode(state.mapMode);
    renderLegend();
  });
  $('#parcel-list').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-code]');
    if (button) selectParcel(button.dataset.code);
  });
  $('#zoom-in').addEventListener('click', () => state.map && state.map.zoomBy(1));
  $('#zoom-out').addEventListener('click', () => state.map && state.map.zoomBy(-1));
  $('#zoom-fit').addEventListener('click', () => state.map && state.map.fit(state.fullBox, true));
  $('#zoom-me').addEventListener('click', () => state.map && state.map.centreOn(state.position));
  if ('serviceWorker' in navigator) navigator.serviceWorker.addEventListener('message', onWorkerMessage);
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
  if (state.map) state.map.select(code);
  renderParcelInfo();
}

// Exposed for tests and debugging in the console; the app never reads it.
window.fieldApp = { state, syncNow: () => requestSync('button'), cacheTiles: () => cacheTiles(true), DATA_FIELDS };

main().catch((err) => {
  console.error(err);
  setSyncMsg(String(err.message || err), 'error');
});
