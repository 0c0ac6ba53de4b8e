// The sync client (DESIGN §4.2): push the outbox in batches with an Idempotency-Key, upload photos
// resumably, pull changes with the server's cursor. Every step keeps its progress in IndexedDB, so
// a lost connection or a closed app resumes where it stopped and a retry never duplicates.

import { PLANNED_KEY, applyPlannedChanges } from './plans.js';
import { clearPlaces, done, getMeta, setMeta, tx } from './store.js';

export class SyncError extends Error {
  constructor(kind, message, detail) {
    super(message);
    this.kind = kind; // offline | auth | server | busy
    this.detail = detail;
  }
}

const DEFAULT_CONFIG = { max_batch_records: 100, preferred_chunk_bytes: 1024 * 1024, max_request_bytes: 25 << 20 };
const PULL_PAGE = 500;
const STORED_ON_SERVER = new Set(['sent', 'held']); // outbox states whose sample the server stored: it names its photos

export function localIsoTime(date = new Date()) {
  // The device's clock with its offset (RFC 3339): the server keeps it raw and judges the skew.
  const pad = (n, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const off = -date.getTimezoneOffset();
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${off >= 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`
  );
}

export class Syncer {
  constructor({ onProgress } = {}) {
    this.onProgress = onProgress || (() => {});
    this.running = null;
  }

  async credentials() {
    const [token, server] = await Promise.all([getMeta('token'), getMeta('server')]);
    return token ? { token, server } : null;
  }

  async api(path, options = {}) {
    const creds = await this.credentials();
    if (!creds) throw new SyncError('auth', 'not provisioned');
    const headers = { Authorization: `Bearer ${creds.token}`, ...(options.headers || {}) };
    let resp;
    try {
      // Same origin as the app: fieldsvc serves both (the provisioning link must come from this server).
      resp = await fetch(path, { ...options, headers, cache: 'no-store', credentials: 'omit' });
    } catch (err) {
      throw new SyncError('offline', 'network unreachable', String(err));
    }
    if (resp.status === 401) {
      const body = await resp.json().catch(() => ({}));
      throw new SyncError('auth', body.message || 'token refused', body.code);
    }
    if (resp.status === 503 || resp.status === 429 || resp.status >= 500) {
      throw new SyncError('busy', `server busy (${resp.status})`, resp.headers.get('Retry-After'));
    }
    return resp;
  }

  /** One full sync; concurrent callers share the running one. */
  sync() {
    if (!this.running) {
      this.running = this.#run().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  async #run() {
    const summary = { pushed: 0, uploaded: 0, pulled: 0 };
    await this.loadConfig();
    summary.pushed = await this.push();
    summary.uploaded = await this.uploadPhotos();
    summary.pulled = await this.pull();
    await setMeta('last_sync', new Date().toISOString());
    await setMeta('last_error', null);
    return summary;
  }

  async loadConfig() {
    const resp = await this.api('/api/v1/sync/config');
    if (!resp.ok) return;
    const config = await resp.json();
    await setMeta('sync_config', config);
    if (config.form_extension) {
      // Keep every extension version seen: a draft answered in an older one is edited with its questions.
      const defs = (await getMeta('form_extensions')) || {};
      defs[config.form_extension.version] = config.form_extension;
      await setMeta('form_extensions', defs);
    }
  }

  async config() {
    return { ...DEFAULT_CONFIG, ...((await getMeta('sync_config')) || {}) };
  }

  // --- push -------------------------------------------------------------------------------

  /**
   * Push pending records in batches. The batch (body and key) is stored before it is sent and
   * re-sent unchanged until an answer arrives, so a replay gets the server's first answer.
   */
  async push() {
    const cfg = await this.config();
    let sent = 0;
    for (let round = 0; round < 1000; round += 1) {
      let inflight = await getMeta('inflight');
      if (!inflight) {
        inflight = await this.#nextBatch(Math.max(1, Math.min(cfg.max_batch_records, 100)));
        if (!inflight) break;
      }
      this.onProgress({ step: 'push', records: inflight.body.records.length });
      const resp = await this.api('/api/v1/sync/push', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': inflight.key },
        body: JSON.stringify(inflight.body),
      });
      const body = await resp.json().catch(() => null);
      if (resp.status === 200 && body && Array.isArray(body.results)) {
        await this.#applyResults(inflight, body.results);
        sent += body.results.length;
      } else {
        // The batch as a whole was refused (too large, bad envelope): never retry it as is.
        await this.#refuseBatch(inflight, resp.status, body);
      }
    }
    return sent;
  }

  async #nextBatch(limit) {
    return tx(['outbox', 'meta'], 'readwrite', async (s) => {
      const pending = (await done(s.outbox.index('status').getAll('pending')))
        .sort((a, b) => a.created_at.localeCompare(b.created_at))
        .slice(0, limit);
      if (!pending.length) return null;
      const inflight = {
        key: crypto.randomUUID(),
        revs: Object.fromEntries(pending.map((r) => [r.id, r.rev])),
        body: {
          device_sent_at: localIsoTime(),
          schema_version: 1,
          records: pending.map((r) => ({
            type: 'sample', id: r.id, base_version: r.base_version ?? null, deleted: false, data: r.data,
          })),
        },
      };
      s.meta.put(inflight, 'inflight');
      return inflight;
    });
  }

  async #applyResults(inflight, results) {
    await tx(['outbox', 'meta'], 'readwrite', async (s) => {
      for (const result of results) {
        const record = await done(s.outbox.get(result.id));
        if (!record) continue;
        const edited = record.rev !== inflight.revs[result.id];
        record.result = result;
        record.synced_at = new Date().toISOString();
        if (['applied', 'duplicate', 'merged'].includes(result.status)) {
          record.status = 'sent';
          record.server_version = result.version;
          record.server_state = result.state || record.server_state || null;
          record.base_version = result.version;
        } else if (result.status === 'held') {
          record.status = 'held';
          record.server_version = result.version;
          record.base_version = result.version;
          record.server_state = 'held';
        } else if (result.status === 'conflict') {
          record.status = 'conflict';
          record.server_version = result.version;
        } else {
          record.status = result.retryable ? 'pending' : 'rejected';
        }
        if (edited) record.status = 'pending'; // changed on the phone while this batch was on its way
        s.outbox.put(record);
      }
      s.meta.delete('inflight');
    });
  }

  async #refuseBatch(inflight, status, body) {
    const reason = {
      status: 'rejected', code: (body && body.code) || `http_${status}`,
      errors: (body && body.details && body.details.fields) || {}, message: body && body.message,
    };
    await tx(['outbox', 'meta'], 'readwrite', async (s) => {
      for (const id of Object.keys(inflight.revs)) {
        const record = await done(s.outbox.get(id));
        if (!record || record.rev !== inflight.revs[id]) continue;
        record.status = 'rejected';
        record.result = { id, ...reason };
        s.outbox.put(record);
      }
      s.meta.delete('inflight');
    });
  }

  // --- photos -----------------------------------------------------------------------------

  async uploadPhotos() {
    const cfg = await this.config();
    const chunk = Math.max(1024, Math.min(cfg.preferred_chunk_bytes, cfg.max_request_bytes));
    const waiting = await tx(['photos', 'outbox'], 'readonly', async (s) => {
      const photos = (await done(s.photos.getAll())).filter((p) => !p.done);
      const ready = [];
      for (const p of photos) {
        const record = await done(s.outbox.get(p.sample_id));
        if (record && record.status !== 'pending' && record.status !== 'rejected') ready.push(p);
      }
      return ready;
    });
    let uploaded = 0;
    for (const photo of waiting) {
      await this.uploadPhoto(photo, chunk);
      uploaded += 1;
    }
    return uploaded;
  }

  /** HEAD for the offset the server holds, then PUT chunks from there (DESIGN §4.2 media). */
  async uploadPhoto(photo, chunk) {
    const url = `/api/v1/media/${photo.sha256}`;
    const head = await this.api(url, { method: 'HEAD' });
    let offset = 0;
    if (head.status === 200) return this.#photoProgress(photo, photo.bytes, true);
    if (head.status === 308) offset = Number(head.headers.get('Upload-Offset') || 0);
    const total = photo.bytes;
    let restarts = 0;
    while (offset < total) {
      const end = Math.min(offset + chunk, total) - 1;
      this.onProgress({ step: 'photo', sha256: photo.sha256, offset, total });
      const resp = await this.api(url, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${offset}-${end}/${total}` },
        body: photo.data.slice(offset, end + 1),
      });
      if (resp.status === 200 || resp.status === 201) return this.#photoProgress(photo, total, true);
      const next = Number(resp.headers.get('Upload-Offset'));
      if (resp.status === 308) {
        offset = next;
        await this.#photoProgress(photo, offset, false);
        continue;
      }
      const body = await resp.json().catch(() => ({}));
      if ((resp.status === 409 && body.code === 'offset_mismatch') || (resp.status === 422 && restarts < 1)) {
        restarts += resp.status === 422 ? 1 : 0; // hash_mismatch: the server dropped the partial data
        offset = Number.isFinite(next) ? next : 0;
        continue;
      }
      await this.#photoProgress(photo, offset, false, body.code || `http_${resp.status}`);
      return false;
    }
    return this.#photoProgress(photo, total, true);
  }

  /**
   * Keep the upload's progress. Once the server holds the whole photo and a sample it stored
   * names it, the phone's copy of the bytes is dropped (a season of photos would fill the
   * phone); the record of it (hash, size, done) stays. A photo of a record the server kept only
   * as a conflict keeps its bytes until that is settled.
   */
  async #photoProgress(photo, offset, complete, error = null) {
    await tx(['photos', 'outbox'], 'readwrite', async (s) => {
      const p = await done(s.photos.get(photo.sha256));
      if (!p) return;
      p.uploaded = offset;
      p.done = complete;
      p.error = error;
      const record = complete ? await done(s.outbox.get(p.sample_id)) : null;
      if (record && STORED_ON_SERVER.has(record.status)) {
        delete p.data;
        p.freed = true;
      }
      s.photos.put(p);
    });
    return complete;
  }

  // --- pull -------------------------------------------------------------------------------

  /** Pull every page after the stored cursor; each page and its cursor are stored together. */
  async pull() {
    let count = 0;
    for (let page = 0; page < 10000; page += 1) {
      const cursor = await getMeta('cursor');
      const query = new URLSearchParams({ limit: String(PULL_PAGE) });
      if (cursor) query.set('cursor', cursor);
      const resp = await this.api(`/api/v1/sync/pull?${query}`);
      if (resp.status === 410) {
        await clearPlaces(); // cursor_expired: start again from nothing
        continue;
      }
      if (!resp.ok) throw new SyncError('server', `pull failed (${resp.status})`);
      const body = await resp.json();
      await applyChanges(body.changes, body.cursor);
      count += body.changes.length;
      this.onProgress({ step: 'pull', changes: count });
      if (!body.has_more) break;
    }
    return count;
  }
}

const STORE_FOR = { region: 'regions', farm_park: 'farm_parks', parcel: 'parcels', sample: 'samples', assignment: 'assignments' };

export function placeRow(change) {
  const d = change.data || {};
  if (change.type === 'parcel') {
    return { code: change.id, version: change.version, geometry: d.geometry, ...(d.properties || {}) };
  }
  if (change.type === 'assignment') return { id: change.id, ...d };
  if (change.type === 'sample') return { ...d, id: change.id, version: change.version };
  return { ...d, code: change.id, version: change.version };
}

export const DATA_FIELDS = ['code', 'parcel', 'collected_at', 'location', 'depth_top_cm', 'depth_bottom_cm',
  'sample_type', 'land_use_observed', 'note', 'media'];

/** A pulled sample reduced to the names a push sends (the server adds id, version, state, ...). */
export function dataFromServer(row) {
  const data = {};
  for (const name of DATA_FIELDS) data[name] = row[name] ?? null;
  if (data.location) {
    const { lat, lon, accuracy_m, mock } = data.location;
    data.location = { lat, lon, accuracy_m, mock: mock ?? false };
  }
  data.media = (row.media || []).map(({ name, sha256, bytes, mime }) => ({ name, sha256, bytes, mime }));
  if (row.extra && Object.keys(row.extra).length) {
    data.extra = row.extra;
    data.extension_version = row.extension_version;
  }
  return data;
}

export async function applyChanges(changes, cursor) {
  await tx(['regions', 'farm_parks', 'parcels', 'assignments', 'samples', 'outbox', 'meta'], 'readwrite', async (s) => {
    if (changes.some((c) => c.type === 'planned_point')) { // kept under one meta key (plans.js: the store's shape)
      s.meta.put(applyPlannedChanges(await done(s.meta.get(PLANNED_KEY)), changes), PLANNED_KEY);
    }
    for (const change of changes) {
      const name = STORE_FOR[change.type];
      if (!name) continue;
      if (change.deleted) {
        s[name].delete(change.id);
        continue;
      }
      const row = placeRow(change);
      s[name].put(row);
      if (change.type === 'sample') {
        const mine = await done(s.outbox.get(change.id));
        if (mine && mine.status !== 'pending') {
          mine.server_state = row.state;
          if ((mine.status === 'sent' || mine.status === 'held') && row.version > (mine.server_version || 0)) {
            mine.data = dataFromServer(row); // edited elsewhere: the phone now edits the server's version
          }
          mine.server_version = row.version;
          if (mine.status === 'sent' || mine.status === 'held') {
            mine.base_version = row.version;
            mine.status = row.state === 'held' ? 'held' : 'sent';
          }
          s.outbox.put(mine);
        }
      }
    }
    s.meta.put(cursor, 'cursor');
  });
}
