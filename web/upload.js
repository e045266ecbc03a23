// 评标录像上传: resumable upload of evaluation recordings (远程异地评标 meeting and local
// recordings) bound to a room and an expert seat. The file's SHA-256 is computed here in
// pieces (Web Crypto has no streaming hash), then 8 MiB chunks go to PUT ?offset=; a chunk that
// fails is resumed from the offset the server holds, never from the start. Needs page.js and
// the `project` constant of video.js.
'use strict';

const CHUNK = 8 * 1024 * 1024;

/* SHA-256 (FIPS 180-4) over a stream of byte arrays. */
const SHA256_K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.block = new Uint8Array(64);
    this.filled = 0;
    this.length = 0;
    this.w = new Uint32Array(64);
  }

  compress(bytes, at) {
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      const j = at + i * 4;
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = this.h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    const s = this.h;
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
  }

  update(bytes) {
    let i = 0;
    this.length += bytes.length;
    if (this.filled) {
      while (this.filled < 64 && i < bytes.length) this.block[this.filled++] = bytes[i++];
      if (this.filled < 64) return;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; i + 64 <= bytes.length; i += 64) this.compress(bytes, i);
    while (i < bytes.length) this.block[this.filled++] = bytes[i++];
  }

  hex() {
    const bits = this.length * 8;
    // 0x80, zeros up to 56 mod 64, then the length in bits: one or two more blocks.
    const tail = new Uint8Array(this.filled < 56 ? 64 - this.filled : 128 - this.filled);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(tail.length - 4, bits >>> 0);
    this.update(tail);
    return Array.from(this.h, (x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
  }
}

async function fileSha256(file, onProgress) {
  const hash = new Sha256();
  for (let at = 0; at < file.size; at += CHUNK) {
    hash.update(new Uint8Array(await file.slice(at, at + CHUNK).arrayBuffer()));
    onProgress(Math.min(at + CHUNK, file.size));
  }
  return hash.hex();
}

function sizeText(bytes) {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${bytes} 字节`;
}

const UPLOAD_STATUS = { open: '上传中', done: '已完成', failed: '失败' };

async function loadUploads() {
  const uploads = await api('GET', `/api/projects/${encodeURIComponent(project)}/recordings/uploads`);
  const body = $('uploads-table').tBodies[0];
  body.replaceChildren(...uploads.map((u) => {
    const tr = document.createElement('tr');
    const cells = [u.room, u.seat, u.file_name, `${sizeText(u.received)} / ${sizeText(u.size)}`,
      UPLOAD_STATUS[u.status] + (u.error ? `：${u.error}` : '')];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.dataset.status = u.status;
    return tr;
  }));
  return uploads;
}

/* PUTs the file from the server's offset on; after a failed chunk, asks where to resume. */
async function sendChunks(upload, file, onProgress) {
  let offset = upload.received;
  let failures = 0;
  while (offset < file.size) {
    const end = Math.min(offset + CHUNK, file.size);
    try {
      const response = await fetch(`/api/recordings/uploads/${upload.id}?offset=${offset}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream', 'X-CSRF-Token': csrf },
        body: file.slice(offset, end),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        // A conflict names the offset the server holds: resume there. Anything else stops.
        if (response.status !== 409) throw new Error((data && data.message) || `HTTP ${response.status}`);
      }
      failures = 0;
    } catch (e) {
      failures += 1;
      if (failures > 5) throw new Error(`上传多次中断，已停止（可稍后重新选择同一文件续传）：${e.message}`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * failures));
    }
    const now = await api('GET', `/api/recordings/uploads/${upload.id}`);
    if (now.status === 'failed') throw new Error(now.error || '上传失败');
    if (now.status === 'done') return now;
    offset = now.received;
    onProgress(offset);
  }
  return api('GET', `/api/recordings/uploads/${upload.id}`);
}

async function startUpload(event) {
  event.preventDefault();
  const file = $('upload-file').files[0];
  if (!file) throw new Error('请选择录像文件');
  const room = $('upload-room').value.trim();
  const seat = $('upload-seat').value.trim();
  const bar = $('upload-progress');
  const label = $('upload-label');
  bar.hidden = false;
  bar.max = file.size;
  label.textContent = '正在计算校验值（SHA-256）…';
  const sha256 = await fileSha256(file, (done) => { bar.value = done; });
  // The same file already open (a reload or a dropped connection): resume it.
  const uploads = await loadUploads();
  let upload = uploads.find((u) => u.status === 'open' && u.room === room && u.seat === seat
    && u.file_name === file.name && u.size === file.size && u.sha256 === sha256);
  if (upload) {
    label.textContent = `续传：服务器已有 ${sizeText(upload.received)}`;
  } else {
    upload = await api('POST', `/api/projects/${encodeURIComponent(project)}/recordings/uploads`,
      { room, seat, file_name: file.name, size: file.size, sha256 });
  }
  const done = await sendChunks(upload, file, (received) => {
    bar.value = received;
    label.textContent = `已上传 ${sizeText(received)} / ${sizeText(file.size)}`;
  });
  label.textContent = `上传完成，校验一致，已并入项目档案：${done.rel_path}`;
  await loadUploads();
}

function initUploads() {
  $('upload-form').addEventListener('submit', (e) => startUpload(e).catch((err) => {
    $('upload-label').textContent = '';
    showError(err.message);
    loadUploads().catch(() => {});
  }));
  if (project) loadUploads().catch((e) => showError(e.message));
}

initUploads();
