// Plain geometry on WGS84 coordinates: no DOM, no network. GeoJSON order is [lon, lat].

const R = 6371008.8; // mean Earth radius, metres

export function haversine(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The polygons of a Polygon or MultiPolygon geometry, each a list of rings. */
export function polygons(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

function inRing(lon, lat, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Point in polygon (even-odd, holes respected). */
export function contains(geometry, lat, lon) {
  return polygons(geometry).some(
    (rings) => rings.length > 0 && inRing(lon, lat, rings[0]) && !rings.slice(1).some((hole) => inRing(lon, lat, hole)),
  );
}

/** Area-weighted centroid of the outer rings, as [lat, lon]; falls back to the vertex mean. */
export function centroid(geometry) {
  let ax = 0;
  let ay = 0;
  let area = 0;
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (const rings of polygons(geometry)) {
    const ring = rings[0] || [];
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [x0, y0] = ring[j];
      const [x1, y1] = ring[i];
      const cross = x0 * y1 - x1 * y0;
      area += cross;
      ax += (x0 + x1) * cross;
      ay += (y0 + y1) * cross;
      sx += x1;
      sy += y1;
      n += 1;
    }
  }
  if (Math.abs(area) > 1e-15) return [ay / (3 * area), ax / (3 * area)];
  return n ? [sy / n, sx / n] : [0, 0];
}

/**
 * Parcels ordered for a position: those containing the point first, then by distance to the centroid.
 * Each item is {parcel, inside, distance_m}.
 */
export function rankParcels(parcels, lat, lon) {
  const ranked = parcels.map((parcel) => {
    const [clat, clon] = centroid(parcel.geometry);
    return { parcel, inside: contains(parcel.geometry, lat, lon), distance_m: haversine(lat, lon, clat, clon) };
  });
  ranked.sort((a, b) => (a.inside === b.inside ? a.distance_m - b.distance_m : a.inside ? -1 : 1));
  return ranked;
}

/** Bounding box [minLon, minLat, maxLon, maxLat] of some geometries. */
export function bbox(geometries) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const g of geometries) {
    for (const rings of polygons(g)) {
      for (const [x, y] of rings[0] || []) {
        b = [Math.min(b[0], x), Math.min(b[1], y), Math.max(b[2], x), Math.max(b[3], y)];
      }
    }
  }
  return Number.isFinite(b[0]) ? b : null;
}

/** An equirectangular projection fitted to a box: metres east/south of its north-west corner. */
export function projection(box) {
  const lat0 = (box[1] + box[3]) / 2;
  const kx = (Math.PI / 180) * R * Math.cos((lat0 * Math.PI) / 180);
  const ky = (Math.PI / 180) * R;
  return {
    x: (lon) => (lon - box[0]) * kx,
    y: (lat) => (box[3] - lat) * ky,
    width: (box[2] - box[0]) * kx,
    height: (box[3] - box[1]) * ky,
  };
}
