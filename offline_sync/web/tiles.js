// The tiles z/x/y covering a lon/lat box at zoom z (Web Mercator, the XYZ scheme): one implementation
// for the page and the service worker. The worker is a classic script (it loads this with
// importScripts) and the page's modules are ES modules (fieldmap.js imports this file for its
// effect), so it is written to be both: no import or export, one name on the global object.
self.fieldsvcTileRange = function tileRange(box, z) {
  const n = 2 ** z;
  const clampLat = (lat) => Math.max(-85.0511, Math.min(85.0511, lat));
  const tx = (lon) => Math.min(n - 1, Math.max(0, Math.floor(((lon + 180) / 360) * n)));
  const ty = (lat) => {
    const r = (clampLat(lat) * Math.PI) / 180;
    return Math.min(n - 1, Math.max(0, Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n)));
  };
  return { x0: tx(box[0]), x1: tx(box[2]), y0: ty(box[3]), y1: ty(box[1]) };
};
