// Service worker: keeps the app shell so the app opens with no network, also after a reload.
// fieldsvc writes the shell's content hash and file list into the two constants below when it
// serves this file, so any change to the app changes this script and phones update on their
// next online visit. API calls (/api/...) are never cached here: the app keeps its data in
// IndexedDB and talks to the network itself.

const VERSION = "dev";
const SHELL = [];
const CACHE = `fieldsvc-field-${VERSION}`;
const SCOPE = new URL(self.registration.scope).pathname; // "/field/"

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
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('fieldsvc-field-') && k !== CACHE).map((k) => caches.delete(k))))
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

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
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
