// Photos are scaled and re-encoded on the phone before they are stored or sent, then hashed:
// the SHA-256 names the exact bytes the server will receive.

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function decode(file) {
  try {
    return await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch (_) {
    // Older engines: go through an <img>.
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      return img;
    } finally {
      URL.revokeObjectURL(url);
    }
  }
}

function toBlob(canvas, type, quality) {
  if (canvas.convertToBlob) return canvas.convertToBlob({ type, quality });
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the photo could not be encoded'))), type, quality),
  );
}

/**
 * Scale `file` so that its longer side is at most maxPx, encode as JPEG at `quality` (0..1).
 * Returns {data: ArrayBuffer, sha256, bytes, mime, width, height}.
 */
export async function compressPhoto(file, maxPx, quality) {
  const image = await decode(file);
  const w0 = image.width;
  const h0 = image.height;
  const scale = Math.min(1, maxPx / Math.max(w0, h0));
  const width = Math.max(1, Math.round(w0 * scale));
  const height = Math.max(1, Math.round(h0 * scale));
  const canvas =
    typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height) : document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; // transparent PNGs become white, not black
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(image, 0, 0, width, height);
  if (image.close) image.close();
  const blob = await toBlob(canvas, 'image/jpeg', quality);
  const data = await blob.arrayBuffer();
  return { data, sha256: await sha256Hex(data), bytes: data.byteLength, mime: 'image/jpeg', width, height };
}
