/* fieldsvc's map: OpenLayers over our own vector tiles (/tiles/<layer>/{z}/{x}/{y}.mvt), an optional
 * XYZ basemap, a layer switcher with a legend, popups, and search → fly to. Loaded from our origin;
 * its settings come from the element's data-map JSON (no inline script, so the CSP stays strict). */
(function () {
  'use strict';
  var el = document.querySelector('[data-map]');
  if (!el || !window.ol) { if (el) el.setAttribute('data-state', 'no-library'); return; }
  var cfg = JSON.parse(el.getAttribute('data-map'));
  var S = cfg.strings;
  var t = function (k) { return S[k] || k; };
  var GRADE = cfg.colours.grade;
  var SAMPLING = cfg.colours.sampling;
  var mode = cfg.mode === 'sampling' ? 'sampling' : 'grade';

  function gradeKey(p) {
    var v = p.verdict || 'not_assessed';
    if ((v === 'qualified' || v === 'not_qualified') && p.basis === 'estimated') return v + '_estimated';
    return GRADE[v] ? v : 'not_assessed';
  }
  function categoryOf(p) { return mode === 'grade' ? gradeKey(p) : (SAMPLING[p.state] ? p.state : 'none'); }

  var styles = {};
  function parcelStyle(feature, resolution) {
    var p = feature.getProperties();
    var key = mode + ':' + categoryOf(p) + ':' + (p.basis === 'estimated' ? 'e' : 'm') + ':' + (resolution < 5 ? 1 : 0);
    if (!styles[key]) {
      var colour = (mode === 'grade' ? GRADE : SAMPLING)[categoryOf(p)];
      styles[key] = new ol.style.Style({
        fill: new ol.style.Fill({ color: colour + 'cc' }),
        stroke: new ol.style.Stroke({ color: resolution < 5 ? '#1a1a1a' : colour, width: resolution < 5 ? 0.8 : 0.4,
                                      lineDash: mode === 'grade' && p.basis === 'estimated' ? [4, 3] : undefined })
      });
    }
    return styles[key];
  }
  var outlineStyles = {
    village: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#14311f', width: 1.5 }) }),
    farm_park: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#0b4f8a', width: 2.5, lineDash: [8, 4] }) })
  };
  function areaStyle(feature, resolution) {
    var p = feature.getProperties();
    if (p.layer !== 'area_labels') return outlineStyles[p.kind] || outlineStyles.village;
    var name = cfg.lang === 'zh' ? p.name : (p.name_en || p.name);
    var park = p.kind === 'farm_park';
    if (!park && resolution >= 25) return null;
    return new ol.style.Style({
      text: new ol.style.Text({
        text: name || p.code, font: '600 13px system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif',
        fill: new ol.style.Fill({ color: park ? '#0b4f8a' : '#111' }),
        stroke: new ol.style.Stroke({ color: '#fff', width: 3 }), overflow: true })
    });
  }
  var pointStyles = {};
  function sampleStyle(feature) {
    var state = feature.get('state') || 'complete';
    var flagged = !!feature.get('flags');
    var key = state + flagged;
    if (!pointStyles[key]) {
      pointStyles[key] = new ol.style.Style({ image: new ol.style.Circle({
        radius: 5, fill: new ol.style.Fill({ color: state === 'complete' ? '#1b5fa8' : '#7a2e8f' }),
        stroke: new ol.style.Stroke({ color: flagged ? '#e0a100' : '#fff', width: flagged ? 3 : 1.5 }) }) });
    }
    return pointStyles[key];
  }
  var plannedStyle = new ol.style.Style({ image: new ol.style.RegularShape({
    points: 3, radius: 7, fill: new ol.style.Fill({ color: '#ffd34d' }),
    stroke: new ol.style.Stroke({ color: '#111', width: 1.5 }) }) });

  function tiles(name, minZoom) {
    return new ol.source.VectorTile({ format: new ol.format.MVT(), maxZoom: 20, minZoom: minZoom || 0,
                                      url: cfg.tiles + '/' + name + '/{z}/{x}/{y}.mvt' });
  }
  var layers = {};
  var stack = [];
  if (cfg.basemap) {
    layers.basemap = new ol.layer.Tile({ source: new ol.source.XYZ({ url: cfg.basemap.url, maxZoom: 19,
      attributions: cfg.basemap.attribution ? [cfg.basemap.attribution] : undefined }) });
    stack.push(layers.basemap);
  }
  layers.parcels = new ol.layer.VectorTile({ source: tiles('parcels'), style: parcelStyle, renderMode: 'hybrid' });
  layers.areas = new ol.layer.VectorTile({ source: tiles('areas'), style: areaStyle, declutter: true });
  layers.samples = new ol.layer.VectorTile({ source: tiles('samples'), style: sampleStyle, minZoom: 12 });
  layers.planned = new ol.layer.VectorTile({ source: tiles('planned'), style: plannedStyle, minZoom: 12 });
  var marks = new ol.source.Vector();
  layers.marks = new ol.layer.Vector({ source: marks, style: new ol.style.Style({
    stroke: new ol.style.Stroke({ color: '#e0a100', width: 3 }), fill: new ol.style.Fill({ color: '#e0a10033' }) }) });
  // A subject's page: its outline (and a parcel's samples with their GPS accuracy circles), kept drawn.
  var focus = new ol.source.Vector();
  layers.focus = new ol.layer.Vector({ source: focus, style: function (f) {
    if (f.get('kind') === 'accuracy') {
      return new ol.style.Style({ fill: new ol.style.Fill({ color: '#1b5fa833' }),
                                  stroke: new ol.style.Stroke({ color: '#1b5fa8', width: 1.5 }) });
    }
    return new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#e0a100', width: 4 }) });
  } });
  var geojson = new ol.format.GeoJSON();
  if (cfg.focus && cfg.focus.outline) {
    focus.addFeature(geojson.readFeature(cfg.focus.outline, { featureProjection: 'EPSG:3857' }));
  }
  (cfg.points || []).forEach(function (p) {
    if (!p.accuracy_m) return;
    var c = ol.proj.fromLonLat([p.lon, p.lat]);
    var circle = new ol.Feature(new ol.geom.Circle(c, p.accuracy_m / Math.cos(p.lat * Math.PI / 180)));
    circle.set('kind', 'accuracy');
    circle.set('code', p.code);
    focus.addFeature(circle);
  });
  stack.push(layers.parcels, layers.areas, layers.focus, layers.samples, layers.planned, layers.marks);

  var popup = document.createElement('div');
  popup.className = 'map-popup';
  popup.id = 'map-popup';
  popup.hidden = true;
  var overlay = new ol.Overlay({ element: popup, autoPan: { animation: { duration: 200 } }, positioning: 'bottom-center',
                                 offset: [0, -8] });
  var view = new ol.View({ center: [0, 0], zoom: 2, maxZoom: 20, constrainResolution: false });
  var map = new ol.Map({ target: el, layers: stack, view: view, overlays: [overlay],
                         controls: ol.control.defaults.defaults({ attributionOptions: { collapsible: false } })
                           .extend([new ol.control.ScaleLine()]) });
  if (!cfg.basemap) el.classList.add('plain');
  window.fieldsvcMap = map;
  if (cfg.bbox) {
    view.fit(ol.proj.transformExtent(cfg.bbox, 'EPSG:4326', 'EPSG:3857'),
             { padding: cfg.focus ? [40, 40, 40, 40] : [12, 12, 12, 12], maxZoom: 19 });
  }
  if (cfg.focus) el.setAttribute('data-focus', cfg.focus.kind + ':' + cfg.focus.code);

  // --- popups ------------------------------------------------------------------------------------
  function row(label, value) {
    var tr = document.createElement('tr');
    var th = document.createElement('th');
    th.textContent = label;
    var td = document.createElement('td');
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    tr.appendChild(th); tr.appendChild(td);
    return tr;
  }
  function show(rows, coordinate, title, kind, code) {
    popup.textContent = '';
    var close = document.createElement('button');
    close.type = 'button'; close.className = 'close'; close.textContent = '×';
    close.setAttribute('aria-label', t('close'));
    close.onclick = function () { popup.hidden = true; marks.clear(); };
    var h = document.createElement('b');
    h.textContent = title;
    var table = document.createElement('table');
    rows.forEach(function (r) { table.appendChild(r); });
    popup.appendChild(close); popup.appendChild(h); popup.appendChild(table);
    popup.setAttribute('data-kind', kind); popup.setAttribute('data-code', code);
    popup.hidden = false;
    overlay.setPosition(coordinate);
  }
  function label(prefix, value) { return S[prefix + value] || value; }
  function parcelPopup(p, coordinate) {
    var link = document.createElement('a');
    link.href = cfg.parcel_url + encodeURIComponent(p.code);
    link.id = 'popup-open';
    link.textContent = t('open_parcel');
    var verdict = label('cat_', p.verdict || 'not_assessed');
    if (p.basis === 'estimated') verdict += ' (' + t('estimated') + ')';
    var village = (cfg.lang === 'zh' ? p.village_name : (p.village_name_en || p.village_name)) || p.village;
    show([row(t('village'), village), row(t('land_use'), label('lu_', p.land_use)), row(t('verdict'), verdict),
          row(t('grade'), p.grade ? label('grade_', p.grade) : '—'), row(t('sampling'), label('cat_', p.state)),
          row('', link)], coordinate, p.code, 'parcel', p.code);
  }
  function samplePopup(p, coordinate) {
    var when = p.collected_at_s ? new Date(p.collected_at_s * 1000).toLocaleString(cfg.lang === 'zh' ? 'zh-CN' : 'en-GB',
      { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '—';
    var flags = (p.flags || '').split(',').filter(Boolean).map(function (f) { return label('flag_', f); }).join('、');
    show([row(t('parcel'), p.parcel), row(t('collected_at'), when), row(t('sampler'), p.sampler || '—'),
          row(t('accuracy'), p.accuracy_m != null ? '± ' + Math.round(p.accuracy_m) + ' m' : '—'),
          row(t('photos'), String(p.photos || 0)), row(t('flags'), flags || '—'),
          row(t('state'), label('cat_', p.state))], coordinate, p.code, 'sample', p.code);
    if (p.accuracy_m) {
      var lat = ol.proj.toLonLat(coordinate)[1];
      marks.clear();
      marks.addFeature(new ol.Feature(new ol.geom.Circle(coordinate, p.accuracy_m / Math.cos(lat * Math.PI / 180))));
    }
  }
  map.on('singleclick', function (event) {
    var hit = null;
    map.forEachFeatureAtPixel(event.pixel, function (feature, layer) {
      if (layer === layers.samples) { hit = { kind: 'sample', f: feature }; return true; }
      if (layer === layers.parcels && !hit) hit = { kind: 'parcel', f: feature };
      return false;
    }, { hitTolerance: 4 });
    marks.clear();
    if (!hit) { popup.hidden = true; return; }
    var p = hit.f.getProperties();
    if (hit.kind === 'sample') {
      var c = hit.f.getFlatCoordinates ? hit.f.getFlatCoordinates() : event.coordinate;
      samplePopup(p, [c[0], c[1]]);
    } else {
      parcelPopup(p, event.coordinate);
    }
  });
  map.on('pointermove', function (event) {
    if (event.dragging) return;
    el.style.cursor = map.hasFeatureAtPixel(event.pixel, { layerFilter: function (l) {
      return l === layers.parcels || l === layers.samples; } }) ? 'pointer' : '';
  });
  map.on('rendercomplete', function () { el.setAttribute('data-state', 'ready'); });
  map.on('movestart', function () { el.setAttribute('data-state', 'moving'); });

  // --- switcher and legend -------------------------------------------------------------------------
  document.querySelectorAll('[data-layer-toggle]').forEach(function (box) {
    var layer = layers[box.getAttribute('data-layer-toggle')];
    if (!layer) { box.closest('label').hidden = true; return; }
    layer.setVisible(box.checked);
    box.addEventListener('change', function () { layer.setVisible(box.checked); });
  });
  function showLegend() {
    document.querySelectorAll('[data-legend]').forEach(function (l) {
      l.hidden = l.getAttribute('data-legend') !== mode;
    });
  }
  document.querySelectorAll('input[name=color]').forEach(function (radio) {
    radio.checked = radio.value === mode;
    radio.addEventListener('change', function () {
      mode = radio.value; styles = {}; layers.parcels.changed(); showLegend();
    });
  });
  showLegend();

  // --- element surfaces: the estimation grid as an image over the tiles (overview) ------------------
  var surfaceSelect = document.querySelector('[data-surface]');
  if (surfaceSelect && cfg.surfaces) {
    var surfaceLegend = document.getElementById('surface-legend');
    var fmt = function (key, vars) {
      return t(key).replace(/\{(\w+)\}/g, function (_, k) { return vars[k] != null ? vars[k] : ''; });
    };
    var legendItem = function (colour, text) {
      var span = document.createElement('span');
      var i = document.createElement('i');
      i.style.background = colour;
      span.appendChild(i);
      span.appendChild(document.createTextNode(text));
      return span;
    };
    surfaceSelect.addEventListener('change', function () {
      var analyte = surfaceSelect.value;
      if (layers.surface) { map.removeLayer(layers.surface); layers.surface = null; }
      surfaceLegend.hidden = true;
      surfaceLegend.textContent = '';
      el.setAttribute('data-surface', '');
      if (!analyte) return;
      fetch(cfg.surfaces.json.replace('ANALYTE', encodeURIComponent(analyte)),
            { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (report) {
          if (surfaceSelect.value !== analyte) return;
          var source = new ol.source.ImageStatic({ url: cfg.surfaces.png.replace('ANALYTE', encodeURIComponent(analyte)),
                                                   imageExtent: report.extent.bbox, projection: 'EPSG:3857' });
          layers.surface = new ol.layer.Image({ opacity: 0.75, source: source });
          el.setAttribute('data-state', 'loading');  // "ready" again once the picture is drawn
          source.on('imageloadend', function () { el.setAttribute('data-surface', analyte); });
          // over the parcels (which would hide it), under the outlines, points and marks
          map.getLayers().insertAt(map.getLayers().getArray().indexOf(layers.parcels) + 1, layers.surface);
          var unit = report.unit ? ' ' + report.unit : '';
          report.legend.forEach(function (item, k) {
            var text = item.label;
            if (report.limit != null) {
              var half = +(report.limit / 2).toPrecision(3);
              text = k === 0 ? fmt('surface_half', { v: half + unit }) : k === 1 ? fmt('surface_limit', { v: report.limit + unit })
                : k === 2 ? fmt('surface_above', { v: report.limit + unit }) : t('surface_not_assessed');
            } else if (k === report.legend.length - 1) {
              text = t('surface_not_assessed');
            }
            surfaceLegend.appendChild(legendItem(item.colour, text));
          });
          var cv = report.cross_validation || {};
          var note = document.createElement('p');
          note.className = 'muted';
          note.textContent = fmt('surface_note', { method: t('surface_' + report.method), n: report.samples,
            rmse: cv.rmse != null ? (+cv.rmse.toPrecision(2)) + unit : '—' });
          surfaceLegend.appendChild(note);
          surfaceLegend.hidden = false;
        })
        .catch(function () {
          surfaceLegend.textContent = t('surface_failed');
          surfaceLegend.hidden = false;
        });
    });
  }

  // --- search: a parcel, village, farm park or bag code → fly to it ---------------------------------
  var form = document.getElementById('map-search');
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var q = form.querySelector('input[name=q]').value.trim();
      var status = document.getElementById('map-search-status');
      if (!q) return;
      popup.hidden = true;
      fetch(cfg.find + '?q=' + encodeURIComponent(q), { credentials: 'same-origin',
                                                         headers: { Accept: 'application/json' } })
        .then(function (r) { return r.json(); })
        .then(function (hit) {
          if (!hit.found) { status.textContent = t('not_found'); el.setAttribute('data-found', ''); return; }
          status.textContent = label('kind_', hit.kind) + ' ' + hit.code;
          var extent = ol.proj.transformExtent(hit.bbox, 'EPSG:4326', 'EPSG:3857');
          marks.clear();
          var centre = ol.extent.getCenter(extent);
          if (hit.kind === 'sample') {
            marks.addFeature(new ol.Feature(new ol.geom.Point(centre)));
          } else if (hit.outline) {
            marks.addFeature(new ol.format.GeoJSON().readFeature(hit.outline, { featureProjection: 'EPSG:3857' }));
          }
          view.fit(extent, { duration: 700, maxZoom: hit.kind === 'sample' ? 18 : 17, padding: [40, 40, 40, 40],
                             callback: function () { el.setAttribute('data-found', hit.kind + ':' + hit.code); } });
        })
        .catch(function () { status.textContent = t('not_found'); });
    });
  }
})();
