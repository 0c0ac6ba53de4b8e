// Custom questions from the uploaded XLSForm (DESIGN §4.3): the form extension's questions, shown
// under "More questions" with their zh/en labels, checked by type at entry, answered into the
// sample's `extra` with the extension version they were asked in. The definition comes down with
// every sync (GET /api/v1/sync/config → form_extension) and is kept in IndexedDB, so the questions
// are there offline; each version seen is kept, so a draft is edited with the questions it was
// answered in. The server checks the same types again (a push naming `data.extra.<question>`).

import { getLang, t } from './i18n.js';

const INTEGER = /^[+-]?[0-9]{1,18}$/;
const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const MAX_TEXT = 2000;

export function labelOf(node) {
  return getLang() === 'zh' ? node.label_zh || node.label_en || node.name : node.label_en || node.label_zh || node.name;
}

function hintOf(q) {
  return getLang() === 'zh' ? q.hint_zh || q.hint_en || '' : q.hint_en || q.hint_zh || '';
}

function make(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An answer as the sampler reads it: choice labels, a position to 6 decimals, a photo by name. */
export function answerText(q, value) {
  if (value === null || value === undefined || value === '') return '—';
  const choice = (name) => labelOf((q.choices || []).find((c) => c.name === name) || { name });
  if (q.type === 'select_one') return choice(value);
  if (q.type === 'select_multiple') return [].concat(value).map(choice).join(getLang() === 'zh' ? '、' : ', ');
  if (q.type === 'geopoint' && typeof value === 'object') {
    const acc = value.accuracy_m !== undefined && value.accuracy_m !== null ? ` ±${Math.round(value.accuracy_m)} m` : '';
    return `${Number(value.lat).toFixed(6)}, ${Number(value.lon).toFixed(6)}${acc}`;
  }
  return String(value);
}

/**
 * Build the questions of `def` into `box` (a fieldset), filled with `answers`.
 * `photoFor(name)` gives a photo already chosen for an image question (or null);
 * `onImage(name, file)` is called when the sampler picks one; `position()` the current GPS fix.
 */
export function renderExtra(box, def, answers, { photoFor, onImage, position }) {
  box.replaceChildren();
  box.hidden = !def || !def.questions || !def.questions.length;
  box.dataset.version = def ? String(def.version) : '';
  if (box.hidden) return;
  box.append(make('legend', {}, t('extra_title')));
  for (const q of def.questions) {
    const id = `x-${q.name}`;
    const wrap = make('div', { class: 'xq', 'data-name': q.name, 'data-type': q.type });
    const label = make(q.type === 'select_multiple' || q.type === 'geopoint' || q.type === 'image' ? 'span' : 'label',
      { for: id, class: 'label' }, labelOf(q) + (q.required ? ' *' : ''));
    wrap.append(label);
    const value = answers ? answers[q.name] : undefined;
    if (q.type === 'select_one') {
      const select = make('select', { id });
      select.append(new Option(t('extra_choose'), ''));
      for (const c of q.choices || []) select.append(new Option(labelOf(c), c.name));
      select.value = value || '';
      wrap.append(select);
    } else if (q.type === 'select_multiple') {
      const group = make('div', { class: 'checks', id, role: 'group' });
      const picked = new Set([].concat(value || []));
      for (const c of q.choices || []) {
        const row = make('label', { class: 'check' });
        const box2 = make('input', { type: 'checkbox', value: c.name });
        box2.checked = picked.has(c.name);
        row.append(box2, document.createTextNode(` ${labelOf(c)}`));
        group.append(row);
      }
      wrap.append(group);
    } else if (q.type === 'geopoint') {
      const shown = make('span', { class: 'xgeo', id }, value ? answerText(q, value) : t('extra_no_position'));
      if (value) shown.dataset.value = JSON.stringify(value);
      const take = make('button', { type: 'button', class: 'small' }, t('extra_use_position'));
      take.addEventListener('click', () => {
        const pos = position();
        if (!pos) {
          shown.textContent = t('need_gps');
          return;
        }
        const point = { lat: pos.lat, lon: pos.lon, accuracy_m: Math.round(pos.accuracy_m * 10) / 10 };
        shown.dataset.value = JSON.stringify(point);
        shown.textContent = answerText(q, point);
      });
      wrap.append(make('div', { class: 'with-button' }));
      wrap.lastChild.append(shown, take);
    } else if (q.type === 'image') {
      const input = make('input', { type: 'file', id, accept: 'image/*', capture: 'environment', hidden: '' });
      const pick = make('label', { class: 'button', for: id }, t('add_photo'));
      const chosen = photoFor(q.name);
      const name = make('span', { class: 'xphoto' }, chosen ? t('extra_photo_ready') : value ? String(value) : '—');
      if (chosen || value) name.dataset.value = chosen ? `${q.name}.jpg` : String(value);
      input.addEventListener('change', async () => {
        if (!input.files.length) return;
        name.textContent = '…';
        const ok = await onImage(q.name, input.files[0]);
        name.textContent = ok ? t('extra_photo_ready') : '—';
        if (ok) name.dataset.value = `${q.name}.jpg`;
        input.value = '';
      });
      wrap.append(make('div', { class: 'with-button' }));
      wrap.lastChild.append(name, pick, input);
    } else {
      const attrs = { id, autocomplete: 'off' };
      if (q.type === 'integer') Object.assign(attrs, { inputmode: 'numeric' });
      if (q.type === 'decimal') Object.assign(attrs, { inputmode: 'decimal' });
      if (q.type === 'date') Object.assign(attrs, { type: 'date' });
      const input = make(q.type === 'text' ? 'textarea' : 'input', q.type === 'text' ? { ...attrs, rows: 1 } : attrs);
      input.value = value === undefined || value === null ? '' : String(value);
      wrap.append(input);
    }
    const hint = hintOf(q);
    if (hint) wrap.append(make('p', { class: 'hint' }, hint));
    wrap.append(make('p', { class: 'field-error', id: `err-${id}` }));
    box.append(wrap);
  }
}

/** The raw entries of the box (to keep what was typed when the box is drawn again). */
export function rawAnswers(box, def) {
  return def ? readExtra(box, def, true).answers : {};
}

/**
 * The answers in `box`, checked by type: `{answers, errors}`; errors by question name, also shown
 * under each question. Unanswered questions are left out (a required one is an error).
 */
export function readExtra(box, def, lenient = false) {
  const answers = {};
  const errors = {};
  if (!def || box.hidden) return { answers, errors };
  for (const q of def.questions) {
    const wrap = box.querySelector(`.xq[data-name="${CSS.escape(q.name)}"]`);
    if (!wrap) continue;
    let value = null;
    let error = null;
    if (q.type === 'select_multiple') {
      const picked = [...wrap.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
      value = picked.length ? picked : null;
    } else if (q.type === 'geopoint') {
      const raw = wrap.querySelector('.xgeo').dataset.value;
      value = raw ? JSON.parse(raw) : null;
    } else if (q.type === 'image') {
      value = wrap.querySelector('.xphoto').dataset.value || null;
    } else {
      const control = wrap.querySelector('input, textarea, select');
      const text = q.type === 'text' ? control.value.trim() : control.value.normalize('NFKC').trim();
      value = text === '' ? null : text;
      if (value !== null && !lenient) {
        if (q.type === 'integer') {
          if (INTEGER.test(value)) value = Number(value);
          else error = t('err_integer');
        } else if (q.type === 'decimal') {
          const dotted = value.replace(',', '.');
          if (DECIMAL.test(dotted) && Number.isFinite(Number(dotted))) value = Number(dotted);
          else error = t('err_decimal');
        } else if (q.type === 'date') {
          const d = new Date(`${value}T00:00:00Z`);
          if (!DATE.test(value) || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) error = t('err_date');
        } else if (q.type === 'text' && value.length > MAX_TEXT) {
          error = t('err_text_long', { max: MAX_TEXT });
        }
      }
    }
    if (value === null && q.required && !lenient) error = t('err_required');
    if (!lenient) wrap.querySelector('.field-error').textContent = error || '';
    if (error) errors[q.name] = error;
    else if (value !== null) answers[q.name] = value;
  }
  return { answers, errors };
}
