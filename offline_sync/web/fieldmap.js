// The field app's map: OpenLayers (served from our origin at /maps/, part of the offline shell) over
// the server's vector tiles of this device's assignment, fetched with the device token (the server
// scopes them to the assignment: fieldsvc/access.py). The service worker keeps the tiles of the
// assignment area for offline use (sw.js); this module asks it to, after provisioning and syncs.
//
// Drawn on top: the phone's position with its accuracy circle, and the planned points from the local
// store (meta key 'planned_points', see PLANNED_KEY) numbered nearest first.
//
// `ol` is the global the classic <script src="/maps/ol.js"> defines before the app's modules run.

import { haversine } from './geo.js';
import './tiles.js'; // defines self.fieldsvcTileRange

/**
 * Planned points kept by the app (meta key below): a list of
 *   {parcel: "code", point: {lat, lon}, reason?: "not_assessed"|"needs_sampling"|"requested", status?: "open",
 *    village?, rank?, sigma?}
 * as the server's `planned_point` pull changes carry them (DESIGN §4.6 sampling/next items; the same key
 * and shape as plans.js keeps). Only open points are drawn, and not those on a parcel this phone has
 * already sampled (its record may still wait in the outbox).
 */
export const PLANNED_KEY = 'planned_points';

const LOCAL = { problem: '#d62d20', pending: '#f2b705' }; // this phone's own records, before the server knows

/** The tiles z/x/y covering a lon/lat box at zoom z (tiles.js: shared with the service worker). */
export function tileRange(box, z) {
  return self.fieldsvcTileRange(box, z);
}

/** Planned points ordered for "navigate to next": nearest to the position first (as stored without one). */
export function orderPlanned(points, position, sampled = new Set()) {
  const items = (points || []).filter((p) => p && p.point && Number.isFinite(p.point.lat) && Number.isFinite(p.point.lon)
    && (p.status === undefined || p.status === 'open') && !sampled.has(p.parcel));
  if (!position) return items.map((p) => ({ ...p, distance_m: null }));
  return items
    .map((p) => ({ ...p, distance_m: haversine(position.lat, position.lon, p.point.lat, p.point.lon) }))
    .sort((a, b) => a.distance_m - b.distance_m);
}

export class FieldMap {
  /**
   * @param {HTMLElement} target
   * @param {object} opts  {cfg (config.json's map), token(), lang(), localState(code) → 'problem'|'pending'|null,
   *                        onSelect(code)}
   */
  constructor(target, opts) {
    this.target = target;
    this.opts = opts;
    this.cfg = opts.cfg;
    this.mode = 'sampling';
    this.selected = null;
    this.fitted = null;
    this.styles = new Map();
    fixedStyles();
    const proj = 'EPSG:3857';
    const layers = [];
    if (this.cfg.basemap) {
      this.basemap = new ol.layer.Tile({
        source: new ol.source.XYZ({ url: this.cfg.basemap.url, maxZoom: 19,
          attributions: this.cfg.basemap.attribution ? [this.cfg.basemap.attribution] : undefined }),
      });
      layers.push(this.basemap);
    } else {
      target.classList.add('plain');
    }
    // The phone's own copy of its parcels, drawn as outlines under the tiles: the map still shows (and
    // taps still pick) the parcels when their tiles were never kept, e.g. offline right after set-up.
    this.localSource = new ol.source.Vector();
    this.local = new ol.layer.Vector({ source: this.localSource, style: (f) => this.localStyle(f) });
    this.parcels = new ol.layer.VectorTile({ source: this.tiles('parcels'), style: (f, r) => this.parcelStyle(f, r),
      renderMode: 'hybrid' });
    this.areas = new ol.layer.VectorTile({ source: this.tiles('areas'), style: (f) => this.areaStyle(f), declutter: true });
    this.samples = new ol.layer.VectorTile({ source: this.tiles('samples'), style: () => SAMPLE_STYLE, minZoom: 13 });
    this.plannedSource = new ol.source.Vector();
    this.planned = new ol.layer.Vector({ source: this.plannedSource, style: (f) => plannedStyle(f) });
    // Parcel numbers from the phone's own copy of its parcels (one label each; a tile-borne label would
    // repeat in every tile the parcel crosses).
    this.labelSource = new ol.source.Vector();
    this.labels = new ol.layer.Vector({ source: this.labelSource, maxResolution: 2.5, declutter: true,
      style: (f) => new ol.style.Style({ text: new ol.style.Text({ text: f.get('label'), font: '800 14px system-ui, sans-serif', offsetY: -16,
        fill: new ol.style.Fill({ color: '#000' }), stroke: new ol.style.Stroke({ color: '#fff', width: 3 }) }) }) });
    this.meSource = new ol.source.Vector();
    this.me = new ol.layer.Vector({ source: this.meSource, style: ME_STYLES });
    layers.push(this.local, this.parcels, this.areas, this.labels, this.samples, this.planned, this.me);
    this.view = new ol.View({ center: [0, 0], zoom: 2, maxZoom: 20, projection: proj });
    this.map = new ol.Map({
      target, layers, view: this.view,
      controls: ol.control.defaults.defaults({ zoom: false, rotate: false, attributionOptions: { collapsible: false } })
        .extend([new ol.control.ScaleLine()]),
    });
    this.map.on('singleclick', (event) => {
      let code = null;
      this.map.forEachFeatureAtPixel(event.pixel, (feature) => {
        code = feature.get('code');
        return true;
      }, { layerFilter: (l) => l === this.parcels || l === this.local, hitTolerance: 3 });
      if (code) this.opts.onSelect(code);
    });
    this.map.on('rendercomplete', () => { target.dataset.state = 'ready'; });
    this.map.on('movestart', () => { target.dataset.state = 'moving'; });
  }

  tiles(layer) {
    const source = new ol.source.VectorTile({
      format: new ol.format.MVT(), maxZoom: 20, url: `${this.cfg.tiles}/${layer}/{z}/{x}/{y}.mvt`,
    });
    // The device token goes in a header (never in the URL, which logs and caches would keep).
    source.setTileLoadFunction((tile, url) => {
      tile.setLoader((extent, resolution, projection) => {
        fetch(url, { headers: { Authorization: `Bearer ${this.opts.token()}` } })
          .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(String(r.status)))))
          .then((data) => {
            const format = tile.getFormat();
            tile.setFeatures(data.byteLength ? format.readFeatures(data, { extent, featureProjection: projection }) : []);
          })
          .catch(() => tile.setState(3)); // ol.TileState.ERROR
      });
    });
    return source;
  }

  category(p) {
    const local = this.opts.localState(p.code);
    if (this.mode === 'sampling') {
      if (local) return local;
      return this.cfg.colours.sampling[p.state] ? p.state : 'none';
    }
    const v = p.verdict || 'not_assessed';
    if ((v === 'qualified' || v === 'not_qualified') && p.basis === 'estimated') return `${v}_estimated`;
    return this.cfg.colours.grade[v] ? v : 'not_assessed';
  }

  colour(category) {
    return LOCAL[category] || this.cfg.colours[this.mode][category] || '#b8bfbb';
  }

  parcelStyle(feature, resolution) {
    const p = feature.getProperties();
    const category = this.category(p);
    const selected = p.code === this.selected;
    const estimated = this.mode === 'grade' && p.basis === 'estimated';
    const key = `${this.mode}:${category}:${selected}:${estimated}`;
    if (!this.styles.has(key)) {
      this.styles.set(key, new ol.style.Style({
        fill: new ol.style.Fill({ color: `${this.colour(category)}b3` }),
        stroke: new ol.style.Stroke({ color: selected ? '#0050ff' : '#111', width: selected ? 4 : 1.2,
          lineDash: estimated ? [5, 4] : undefined }),
        zIndex: selected ? 2 : 1,
      }));
    }
    return this.styles.get(key);
  }

  localStyle(feature) {
    const selected = feature.get('code') === this.selected;
    const local = this.opts.localState(feature.get('code'));
    return new ol.style.Style({
      fill: new ol.style.Fill({ color: local ? `${LOCAL[local]}80` : 'rgba(255, 255, 255, 0.35)' }),
      stroke: new ol.style.Stroke({ color: selected ? '#0050ff' : '#444', width: selected ? 4 : 1 }),
    });
  }

  /** The parcels as the phone keeps them: [{code, geometry (GeoJSON)}]. */
  setLocalParcels(parcels) {
    const format = new ol.format.GeoJSON();
    this.localSource.clear();
    this.localSource.addFeatures(parcels.filter((p) => p.geometry).map((p) => {
      const f = format.readFeature({ type: 'Feature', geometry: p.geometry, properties: { code: p.code } },
        { featureProjection: 'EPSG:3857' });
      return f;
    }));
  }

  areaStyle(feature) {
    const p = feature.getProperties();
    if (p.layer !== 'area_labels') return AREA_STYLE;
    const name = this.opts.lang() === 'zh' ? p.name : p.name_en || p.name;
    return new ol.style.Style({ text: new ol.style.Text({ text: name || p.code, font: '700 14px system-ui, sans-serif',
      fill: new ol.style.Fill({ color: '#111' }), stroke: new ol.style.Stroke({ color: '#fff', width: 3 }), overflow: true }) });
  }

  /** Restyle (local records changed, a parcel was picked, the colour mode or language changed). */
  refresh() {
    this.styles.clear();
    this.local.changed();
    this.parcels.changed();
    this.areas.changed();
    this.target.dataset.mode = this.mode;
    this.target.dataset.selected = this.selected || '';
  }

  /** Fetch the data tiles again (after a sync the server's colours have changed; a tile that failed
   * offline stays failed until then). */
  reload() {
    this.target.dataset.state = 'loading'; // "ready" again once the fresh tiles are drawn
    for (const layer of [this.parcels, this.areas, this.samples]) layer.getSource().refresh();
  }

  setMode(mode) {
    this.mode = mode === 'grade' ? 'grade' : 'sampling';
    this.refresh();
  }

  select(code) {
    this.selected = code;
    this.refresh();
  }

  /** Fit the assignment's box [minLon, minLat, maxLon, maxLat] (once per box, or when asked again). */
  fit(box, force = false) {
    if (!box || (!force && this.fitted === box.join())) return;
    this.fitted = box.join();
    this.map.updateSize();
    this.view.fit(ol.proj.transformExtent(box, 'EPSG:4326', 'EPSG:3857'), { padding: [16, 16, 16, 16], maxZoom: 18 });
  }

  zoomBy(delta) {
    this.view.animate({ zoom: this.view.getZoom() + delta, duration: 200 });
  }

  centreOn(position) {
    if (!position) return;
    this.view.animate({ center: ol.proj.fromLonLat([position.lon, position.lat]),
      zoom: Math.max(this.view.getZoom(), 17), duration: 300 });
  }

  /** The phone's position: a dot and its accuracy circle (metres on the ground, so scaled for Mercator). */
  setPosition(position) {
    this.meSource.clear();
    if (!position) {
      delete this.target.dataset.position;
      return;
    }
    const centre = ol.proj.fromLonLat([position.lon, position.lat]);
    const scale = 1 / Math.cos((position.lat * Math.PI) / 180);
    const circle = new ol.Feature(new ol.geom.Circle(centre, Math.max(position.accuracy_m || 0, 1) * scale));
    circle.set('kind', 'accuracy');
    const dot = new ol.Feature(new ol.geom.Point(centre));
    dot.set('kind', 'me');
    this.meSource.addFeatures([circle, dot]);
    this.target.dataset.position = `${position.lat.toFixed(6)},${position.lon.toFixed(6)},${Math.round(position.accuracy_m)}`;
  }

  /** Labels at the parcels' centroids: [{code, lat, lon}]. */
  setLabels(points) {
    this.labelSource.clear();
    this.labelSource.addFeatures(points.map((p) => new ol.Feature({ geometry: new ol.geom.Point(ol.proj.fromLonLat([p.lon, p.lat])),
      label: String(p.code).split('-').pop() })));
  }

  /** Planned points, numbered in the order given (nearest first: orderPlanned). */
  setPlanned(ordered) {
    this.plannedSource.clear();
    this.plannedSource.addFeatures(ordered.map((p, i) => {
      const f = new ol.Feature(new ol.geom.Point(ol.proj.fromLonLat([p.point.lon, p.point.lat])));
      f.setProperties({ n: i + 1, parcel: p.parcel, next: i === 0 });
      return f;
    }));
    this.target.dataset.planned = String(ordered.length);
  }

  /** What the map shows of a parcel (from the tiles it has drawn): its properties and colour category. */
  parcelShown(code) {
    const extent = this.view.calculateExtent(this.map.getSize());
    const hit = this.parcels.getFeaturesInExtent(extent).find((f) => f.get('code') === code);
    if (!hit) return null;
    const p = hit.getProperties();
    return { code, state: p.state, verdict: p.verdict, basis: p.basis, category: this.category(p) };
  }

  /** The pixel of a lon/lat on the map (tests click parcels through it). */
  pixelOf(lon, lat) {
    return this.map.getPixelFromCoordinate(ol.proj.fromLonLat([lon, lat]));
  }
}

// Built on first use, so that this module loads (and the app runs, with its list) even without the library.
let AREA_STYLE;
let SAMPLE_STYLE;
function fixedStyles() {
  if (AREA_STYLE) return;
  AREA_STYLE = new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#14311f', width: 2, lineDash: [6, 4] }) });
  SAMPLE_STYLE = new ol.style.Style({ image: new ol.style.Circle({ radius: 5, fill: new ol.style.Fill({ color: '#1b5fa8' }),
    stroke: new ol.style.Stroke({ color: '#fff', width: 2 }) }) });
}
const ME_STYLES = (feature) => (feature.get('kind') === 'accuracy'
  ? new ol.style.Style({ fill: new ol.style.Fill({ color: 'rgba(0, 80, 255, 0.15)' }),
    stroke: new ol.style.Stroke({ color: '#0050ff', width: 1.5 }) })
  : new ol.style.Style({ image: new ol.style.Circle({ radius: 8, fill: new ol.style.Fill({ color: '#0050ff' }),
    stroke: new ol.style.Stroke({ color: '#fff', width: 3 }) }), zIndex: 10 }));

function plannedStyle(feature) {
  const next = feature.get('next');
  return new ol.style.Style({
    image: new ol.style.RegularShape({ points: 3, radius: next ? 13 : 10, fill: new ol.style.Fill({ color: next ? '#ff7a00' : '#ffd34d' }),
      stroke: new ol.style.Stroke({ color: '#111', width: 2 }) }),
    text: new ol.style.Text({ text: String(feature.get('n')), offsetY: 2, font: '800 11px system-ui, sans-serif',
      fill: new ol.style.Fill({ color: '#111' }) }),
    zIndex: next ? 5 : 4,
  });
}
