// Service worker: keeps the app shell so the app opens with no network, also after a reload.
// fieldsvc writes the shell's content hash and file list into the two constants below when it
// serves this file, so any change to the app changes this script and phones update on their
// next online visit. API calls (/api/...) are never cached here: the app keeps its data in
// IndexedDB and talks to the network itself.
//
// Map tiles: the app posts {type: 'cache-tiles', ...} after provisioning and syncs; the worker then
// keeps the data tiles (/tiles/<layer>/z/x/y.mvt) of the assignment area for the configured zooms,
// and basemap tiles too when the server allows it (FIELDSVC_BASEMAP_OFFLINE=1), in a cache of its own
// that survives app updates, bounded by a tile count and a byte total (whole zooms are left out,
// highest first, when the area needs more). Tiles are then served network-first with a short
// timeout, falling back to that cache, so the map shows the last known tiles offline.

importScripts('tiles.js'); // self.fieldsvcTileRange, shared with the page

const VERSION = "dev";
const SHELL = [];
const CACHE = `fieldsvc-field-${VERSION}`;
const SCOPE = new URL(self.registration.scope).pathname; // "/field/"
const TILE_CACHE = 'fieldsvc-tiles';
const TILE_TIMEOUT_MS = 4000; // a tile the network has not delivered by then comes from the cache
const OPAQUE_BYTES = 30 * 1024; // a basemap tile without CORS has an unreadable size: counted as this

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL.map((f) => new Request(f, { cache: 'reload' })))),
  );
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('fieldsvc-field-') && k !== CACHE && k !== TILE_CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function fromCache(request) {
  const cache = await caches.open(CACHE);
  return cache.match(request, { ignoreSearch: true });
}

async function networkFirst(request) {
  // config.json: fresh when online, the cached copy when not.
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(request) {
  const cached = await fromCache(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && request.method === 'GET') (await caches.open(CACHE)).put(request, response.clone());
  return response;
}

// --- map tiles ------------------------------------------------------------------------------------

function basemapUrl(template, z, x, y) {
  const sub = template.match(/\{([a-z])-([a-z])\}/);
  let url = template;
  if (sub) {
    const letters = [];
    for (let c = sub[1].charCodeAt(0); c <= sub[2].charCodeAt(0); c += 1) letters.push(String.fromCharCode(c));
    url = url.replace(sub[0], letters[(x + y) % letters.length]);
  }
  return url.replace('{z}', z).replace('{x}', x).replace('{y}', y).replace('{-y}', 2 ** z - 1 - y);
}

/** The URLs to keep: zoom by zoom from the lowest, whole zooms only, within the tile count. */
function plan(msg) {
  const urls = [];
  let zooms = [];
  for (let z = msg.min_zoom; z <= msg.max_zoom; z += 1) {
    const r = self.fieldsvcTileRange(msg.bbox, z);
    const level = [];
    for (let x = r.x0; x <= r.x1; x += 1) {
      for (let y = r.y0; y <= r.y1; y += 1) {
        for (const layer of msg.layers) level.push({ url: new URL(`${msg.tiles}/${layer}/${z}/${x}/${y}.mvt`, self.location.origin).href, data: true });
        if (msg.basemap) level.push({ url: basemapUrl(msg.basemap, z, x, y), data: false });
      }
    }
    if (urls.length + level.length > msg.max_tiles) break;
    urls.push(...level);
    zooms = [...zooms, z];
  }
  return { urls, zooms };
}

async function fetchTile(item, token, cached) {
  if (item.data) {
    const headers = { Authorization: `Bearer ${token}` };
    const etag = cached && cached.headers.get('ETag');
    if (etag) headers['If-None-Match'] = etag;
    const resp = await fetch(item.url, { headers, cache: 'no-store' });
    if (resp.status === 304) return { response: null, bytes: Number(cached.headers.get('X-Bytes') || 0) };
    if (!resp.ok) throw new Error(`tile ${resp.status}`);
    const body = await resp.arrayBuffer();
    const keep = new Response(body, { headers: { 'Content-Type': resp.headers.get('Content-Type') || '',
      ETag: resp.headers.get('ETag') || '', 'X-Bytes': String(body.byteLength) } });
    return { response: keep, bytes: body.byteLength };
  }
  if (cached) return { response: null, bytes: Number(cached.headers.get('X-Bytes') || OPAQUE_BYTES) };
  let resp;
  try {
    resp = await fetch(item.url, { mode: 'cors', credentials: 'omit' });
  } catch (_) {
    resp = await fetch(item.url, { mode: 'no-cors', credentials: 'omit' }); // a server without CORS: opaque
  }
  if (resp.type === 'opaque') return { response: resp, bytes: OPAQUE_BYTES };
  if (!resp.ok) throw new Error(`basemap ${resp.status}`);
  const body = await resp.arrayBuffer();
  return { response: new Response(body, { headers: { 'Content-Type': resp.headers.get('Content-Type') || 'image/png',
    'X-Bytes': String(body.byteLength) } }), bytes: body.byteLength };
}

let caching = null; // one run at a time; a newer request waits for it, then runs with its own area

async function cacheTiles(msg) {
  const cache = await caches.open(TILE_CACHE);
  const { urls, zooms } = plan(msg);
  const wanted = new Set(urls.map((u) => u.url));
  let bytes = 0;
  let stored = 0;
  let failed = 0;
  let full = false;
  let next = 0;
  const worker = async () => {
    while (next < urls.length && !full) {
      const item = urls[next];
      next += 1;
      try {
        const cached = await cache.match(item.url, { ignoreVary: true });
        const got = await fetchTile(item, msg.token, cached);
        if (bytes + got.bytes > msg.max_bytes) {
          full = true;
          wanted.delete(item.url);
          break;
        }
        bytes += got.bytes;
        if (got.response) await cache.put(item.url, got.response);
        stored += 1;
      } catch (_) {
        failed += 1; // kept from an earlier run if it was there; the next sync tries again
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // Tiles of an earlier assignment (or past the bounds now) go, so the cache never outgrows them.
  for (const request of await cache.keys()) {
    if (!wanted.has(request.url)) await cache.delete(request);
  }
  return { type: 'tiles-cached', tiles: stored, planned: urls.length, failed, bytes, zooms, full, at: new Date().toISOString() };
}

async function tileFirstFromNetwork(request) {
  const cache = await caches.open(TILE_CACHE);
  const network = fetch(request).then(async (response) => {
    if (response.ok && (await cache.match(request.url, { ignoreVary: true }))) {
      const body = await response.clone().arrayBuffer();
      await cache.put(request.url, new Response(body, { headers: { 'Content-Type': response.headers.get('Content-Type') || '',
        ETag: response.headers.get('ETag') || '', 'X-Bytes': String(body.byteLength) } }));
    }
    return response;
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, TILE_TIMEOUT_MS, null));
  try {
    const response = await Promise.race([network, timeout]);
    if (response) return response;
  } catch (_) {
    /* offline: the cache below */
  }
  const cached = await cache.match(request.url, { ignoreVary: true });
  if (cached) return cached;
  return network; // not kept offline: the network's answer or its error
}

self.addEventListener('message', (event) => {
  const msg = event.data || {};
  if (msg.type !== 'cache-tiles') return;
  const run = (caching || Promise.resolve()).catch(() => null).then(() => cacheTiles(msg));
  caching = run;
  event.waitUntil(run.then((report) => {
    if (event.source) event.source.postMessage(report);
  }).catch((err) => {
    if (event.source) event.source.postMessage({ type: 'tiles-cached', error: String(err && err.message) });
  }));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method === 'GET' && url.origin === self.location.origin && url.pathname.startsWith('/tiles/')) {
    event.respondWith(tileFirstFromNetwork(request));
    return;
  }
  if (request.method === 'GET' && url.origin === self.location.origin && url.pathname.startsWith('/maps/')) {
    event.respondWith(cacheFirst(request)); // the map library: part of the shell
    return;
  }
  if (request.method === 'GET' && url.origin !== self.location.origin && request.destination === 'image') {
    // Basemap tiles: the kept copy when there is one (only with FIELDSVC_BASEMAP_OFFLINE=1), else the network.
    event.respondWith(caches.open(TILE_CACHE).then((c) => c.match(request.url)).then((hit) => hit || fetch(request)));
    return;
  }
  if (request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  if (request.mode === 'navigate') {
    // Any page of the app is the shell; the fragment (provisioning link) never reaches here.
    event.respondWith(fromCache(SCOPE).then((cached) => cached || fetch(request)));
    return;
  }
  if (url.pathname === `${SCOPE}config.json`) {
    event.respondWith(networkFirst(request));
    return;
  }
  event.respondWith(cacheFirst(request));
});
