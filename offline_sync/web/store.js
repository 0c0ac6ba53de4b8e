// IndexedDB: the device's copy of its assignment (places, the team's samples) and its outbox.
//
// Stores:
//   meta        key/value: server, device_id, token, user, cursor, last_sync, inflight push, lang, config,
//               planned_points (the open planned points: shape in plans.js), parcel_order
//   regions, farm_parks, parcels (keyPath code), assignments (keyPath id), samples (keyPath id, index code)
//   outbox      keyPath id: the samples made on this phone, with their sync status
//   photos      keyPath sha256: compressed photo bytes and their upload progress

const DB_NAME = 'fieldsvc-field';
const DB_VERSION = 1;
export const PLACE_STORES = ['regions', 'farm_parks', 'parcels', 'assignments', 'samples'];

let dbPromise = null;

export function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore('meta');
        for (const name of ['regions', 'farm_parks', 'parcels']) db.createObjectStore(name, { keyPath: 'code' });
        db.createObjectStore('assignments', { keyPath: 'id' });
        db.createObjectStore('samples', { keyPath: 'id' }).createIndex('code', 'code');
        const outbox = db.createObjectStore('outbox', { keyPath: 'id' });
        outbox.createIndex('status', 'status');
        outbox.createIndex('code', 'data.code');
        db.createObjectStore('photos', { keyPath: 'sha256' }).createIndex('sample_id', 'sample_id');
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
    });
  }
  return dbPromise;
}

export function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Run fn(stores) in one transaction over `names`; resolves with fn's result once the transaction
 * has committed (so nothing is reported saved before it is on disk), rejects if it aborts.
 */
export async function tx(names, mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const t = db.transaction(names, mode);
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    let result;
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('transaction aborted'));
    Promise.resolve()
      .then(() => fn(stores, t))
      .then((value) => {
        result = value;
      })
      .catch((err) => {
        try {
          t.abort();
        } catch (_) {
          /* already finished */
        }
        reject(err);
      });
  });
}

export const get = (store, key) => tx([store], 'readonly', (s) => done(s[store].get(key)));
export const getAll = (store) => tx([store], 'readonly', (s) => done(s[store].getAll()));
export const put = (store, value, key) => tx([store], 'readwrite', (s) => done(s[store].put(value, key)));
export const count = (store) => tx([store], 'readonly', (s) => done(s[store].count()));
export const byIndex = (store, index, key) => tx([store], 'readonly', (s) => done(s[store].index(index).getAll(key)));

export const getMeta = (key) => get('meta', key);
export const setMeta = (key, value) => put('meta', value, key);

/** Forget every place and pulled sample (a new device, or the server said the cursor expired). */
export function clearPlaces() {
  return tx([...PLACE_STORES, 'meta'], 'readwrite', async (s) => {
    for (const name of PLACE_STORES) s[name].clear();
    s.meta.delete('cursor');
    s.meta.delete('planned_points'); // plans.js PLANNED_KEY
  });
}
