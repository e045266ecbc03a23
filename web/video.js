// The evaluation video page: rooms → NVR channels, pulls with progress from media time and
// their gaps, a player (seek, speed, frame step) and the synchronised grid of a room's channels
// in the two layouts of the remote-evaluation system (评标, 询标).
'use strict';

const params = new URLSearchParams(location.search);
const project = params.get('project') || '';
const base = `/api/projects/${encodeURIComponent(project)}/video`;
let nvrNames = [];
let pulls = [];
let pollTimer = null;

const STATUS = { queued: '排队中', pulling: '拉取中', done: '完成', failed: '失败' };

function cell(row, content) {
  const td = document.createElement('td');
  if (content instanceof Node) td.appendChild(content); else td.textContent = content == null ? '—' : String(content);
  row.appendChild(td);
  return td;
}

function button(text, onClick, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className || 'btn btn-quiet';
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

const seconds = (text) => Date.parse(text) / 1000;

/** China Standard Time wall clock of a Unix time, "YYYY-MM-DD HH:MM:SS". */
function cstText(unix) {
  const d = new Date((unix + 8 * 3600) * 1000);
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** datetime-local (China Standard Time wall clock) ⇄ RFC 3339. */
function cst(value) {
  return value.length === 16 ? `${value}:00+08:00` : `${value}+08:00`;
}
function toLocalInput(unix) {
  return cstText(unix).replace(' ', 'T');
}

/* ------------------------------------------------------------------ channels */

function channelRow(channel) {
  const row = document.createElement('tr');
  const input = (value, attrs) => {
    const i = document.createElement('input');
    Object.assign(i, attrs);
    i.value = value;
    return i;
  };
  cell(row, input(channel.room, { maxLength: 64, placeholder: '第一评标室', className: 'ch-room' }));
  const select = document.createElement('select');
  select.className = 'ch-nvr';
  for (const name of new Set([...nvrNames, channel.nvr].filter(Boolean))) {
    const option = document.createElement('option');
    option.value = option.textContent = name;
    select.appendChild(option);
  }
  select.value = channel.nvr || nvrNames[0] || '';
  cell(row, select);
  cell(row, input(channel.channel, { type: 'number', min: 1, max: 999, className: 'ch-number' }));
  cell(row, input(channel.label, { maxLength: 64, placeholder: '全景 / 专家1 / 桌面', className: 'ch-label' }));
  cell(row, button('删除', () => row.remove()));
  return row;
}

async function loadChannels() {
  const channels = await api('GET', `${base}/channels`);
  nvrNames = [...new Set(channels.map((c) => c.nvr).concat(nvrNames))];
  const body = $('channels-table').tBodies[0];
  body.replaceChildren(...channels.map(channelRow));
}

async function saveChannels() {
  const rows = [...$('channels-table').tBodies[0].rows];
  const channels = rows.map((row) => ({
    room: row.querySelector('.ch-room').value,
    nvr: row.querySelector('.ch-nvr').value,
    channel: Number(row.querySelector('.ch-number').value),
    label: row.querySelector('.ch-label').value,
  }));
  await api('PUT', `${base}/channels`, channels);
  showNotice('通道配置已保存');
  await loadChannels();
}

/* ------------------------------------------------------------------ pulls */

function gapText(pull) {
  if (pull.status !== 'done') return pull.error ? pull.error : '—';
  if (!pull.gaps.length) return '无';
  return pull.gaps.map((g) => `${cstText(seconds(g.start)).slice(11)}–${cstText(seconds(g.end)).slice(11)}`).join('，');
}

function renderPulls() {
  const body = $('pulls-table').tBodies[0];
  body.replaceChildren(...pulls.map((pull) => {
    const row = document.createElement('tr');
    row.dataset.pull = pull.id;
    cell(row, pull.room);
    cell(row, `${pull.nvr} #${pull.channel}${pull.label ? `（${pull.label}）` : ''}`);
    cell(row, `${cstText(seconds(pull.start))} – ${cstText(seconds(pull.end)).slice(11)}`);
    cell(row, STATUS[pull.status] || pull.status);
    const bar = document.createElement('progress');
    bar.max = pull.window_ms;
    bar.value = pull.media_received_ms;
    cell(row, bar);
    const gaps = cell(row, gapText(pull));
    if (pull.gaps.length || pull.status === 'failed') gaps.className = 'gap';
    const actions = cell(row, '');
    if (pull.status === 'done') {
      actions.append(button('播放', () => openPlayer(pull)), button('同步回放', () => openGrid(pull)));
    }
    return row;
  }));
}

async function loadPulls() {
  pulls = await api('GET', `${base}/pulls`);
  renderPulls();
  clearTimeout(pollTimer);
  if (pulls.some((p) => p.status === 'queued' || p.status === 'pulling')) {
    pollTimer = setTimeout(() => loadPulls().catch((e) => showError(e.message)), 1000);
  }
}

async function startPull(event) {
  event.preventDefault();
  await api('POST', `${base}/pulls`, { start: cst($('pull-start').value), end: cst($('pull-end').value) });
  showNotice('已开始拉取');
  await loadPulls();
}

/* ------------------------------------------------------------------ timelines */

/** Draws a pull's gaps on a timeline element spanning its window. */
function drawTimeline(node, windowStart, windowLength, gapLists) {
  node.replaceChildren();
  for (const gaps of gapLists) {
    for (const gap of gaps) {
      const mark = document.createElement('div');
      mark.className = 'gap-mark';
      mark.style.left = `${((seconds(gap.start) - windowStart) / windowLength) * 100}%`;
      mark.style.width = `${((seconds(gap.end) - seconds(gap.start)) / windowLength) * 100}%`;
      mark.title = `缺失 ${cstText(seconds(gap.start))} – ${cstText(seconds(gap.end)).slice(11)}`;
      node.appendChild(mark);
    }
  }
  const cursor = document.createElement('div');
  cursor.className = 'cursor';
  node.appendChild(cursor);
  return cursor;
}

/* ------------------------------------------------------------------ player */

const player = { pull: null, offset: 0, fps: 25, cursor: null };

function openPlayer(pull) {
  player.pull = pull;
  const start = seconds(pull.start);
  // The file's time 0 is its first frame, which may come after the window start.
  player.offset = seconds(pull.first_frame) - start;
  const covered = (seconds(pull.last_frame) - seconds(pull.first_frame))
    - pull.gaps.reduce((sum, g) => sum + Math.max(0, Math.min(seconds(g.end), seconds(pull.last_frame)) - Math.max(seconds(g.start), seconds(pull.first_frame))), 0);
  player.fps = pull.frames && covered > 0 ? Math.round(pull.frames / covered) || 25 : 25;
  $('player-title').textContent = `回放：${pull.room} ${pull.nvr} #${pull.channel}${pull.label ? `（${pull.label}）` : ''}`;
  $('player').src = `/api/video/pulls/${pull.id}/file`;
  $('player-seek').max = String(pull.window_ms / 1000);
  player.cursor = drawTimeline($('player-timeline'), start, pull.window_ms / 1000, [pull.gaps]);
  $('player-section').hidden = false;
  $('player-section').scrollIntoView({ block: 'start' });
}

function playerTick() {
  const video = $('player');
  if (!player.pull) return;
  const t = video.currentTime + player.offset;
  if (document.activeElement !== $('player-seek')) $('player-seek').value = String(t);
  $('player-clock').textContent = cstText(seconds(player.pull.start) + t);
  player.cursor.style.left = `${(t / (player.pull.window_ms / 1000)) * 100}%`;
  $('player-play').textContent = video.paused ? '播放' : '暂停';
}

function step(frames) {
  const video = $('player');
  video.pause();
  video.currentTime = Math.max(0, video.currentTime + frames / player.fps);
}

/* ------------------------------------------------------------------ grid */

const grid = { pulls: [], start: 0, length: 0, cursor: null, playing: false };

function tileVideos() {
  return [...document.querySelectorAll('#grid video')];
}

/** Seeks every tile to `t` seconds after the window start. */
function gridSeek(t) {
  t = Math.max(0, Math.min(grid.length, t));
  for (const video of tileVideos()) {
    video.currentTime = Math.max(0, t - Number(video.dataset.offset));
  }
  gridTick();
}

/** Seconds after the window start shown by the main tile (the clock of the grid). */
function gridTime() {
  const main = tileVideos()[0];
  return main ? main.currentTime + Number(main.dataset.offset) : 0;
}

function gridTick() {
  if (!grid.pulls.length) return;
  const t = gridTime();
  if (document.activeElement !== $('grid-seek')) $('grid-seek').value = String(t);
  $('grid-clock').textContent = cstText(grid.start + t);
  grid.cursor.style.left = `${(t / grid.length) * 100}%`;
  // Tiles drift apart while playing (decoders, buffering); pull stragglers back to the main one.
  if (grid.playing) {
    for (const video of tileVideos().slice(1)) {
      const want = t - Number(video.dataset.offset);
      if (want >= 0 && Math.abs(video.currentTime - want) > 0.3) video.currentTime = want;
    }
  }
}

function setLayout(layout) {
  $('grid').className = `grid layout-${layout}`;
}

function hideTile(tile) {
  tile.classList.add('hidden-tile');
  $('grid-drawer').appendChild(button(`显示 ${tile.dataset.name}`, (event) => {
    tile.classList.remove('hidden-tile');
    event.target.remove();
  }));
}

function openGrid(pull) {
  // The room's channels pulled over the same window.
  grid.pulls = pulls
    .filter((p) => p.status === 'done' && p.room === pull.room && p.start === pull.start && p.end === pull.end)
    .sort((a, b) => a.channel - b.channel)
    .slice(0, 9);
  grid.start = seconds(pull.start);
  grid.length = pull.window_ms / 1000;
  grid.playing = false;
  $('grid-title').textContent = `同步回放：${pull.room}（${grid.pulls.length} 路）`;
  $('grid-seek').max = String(grid.length);
  $('grid-time').value = toLocalInput(grid.start);
  $('grid-drawer').replaceChildren();
  const floating = document.createElement('div');
  floating.className = 'floating';
  const tiles = grid.pulls.map((p, index) => {
    const tile = document.createElement('div');
    tile.className = index === 0 ? 'tile main' : 'tile';
    tile.dataset.name = `${p.nvr} #${p.channel}${p.label ? ` ${p.label}` : ''}`;
    const name = document.createElement('span');
    name.className = 'tile-name';
    name.textContent = tile.dataset.name;
    const video = document.createElement('video');
    video.muted = true;
    video.preload = 'auto';
    video.playsInline = true;
    video.dataset.offset = String(seconds(p.first_frame) - grid.start);
    video.dataset.pull = String(p.id);
    video.src = `/api/video/pulls/${p.id}/file`;
    tile.append(name, video);
    if (index > 0) tile.appendChild(button('收起', () => hideTile(tile), 'btn btn-quiet tile-hide'));
    return tile;
  });
  $('grid').replaceChildren(...tiles.slice(0, 1), floating);
  floating.append(...tiles.slice(1));
  grid.cursor = drawTimeline($('grid-timeline'), grid.start, grid.length, grid.pulls.map((p) => p.gaps));
  $('grid-section').hidden = false;
  $('grid-section').scrollIntoView({ block: 'start' });
}

/* ------------------------------------------------------------------ start */

async function init() {
  $('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });
  if (!project) {
    showError('缺少项目编号（地址中的 ?project=项目编号）');
    return;
  }
  $('project-number').textContent = project;
  const session = await api('GET', '/api/session');
  csrf = session.csrf_token || '';
  $('add-channel').addEventListener('click', () => {
    $('channels-table').tBodies[0].appendChild(channelRow({ room: '', nvr: '', channel: 1, label: '' }));
  });
  $('save-channels').addEventListener('click', () => saveChannels().catch((e) => showError(e.message)));
  $('pull-form').addEventListener('submit', (e) => startPull(e).catch((err) => showError(err.message)));

  const video = $('player');
  $('player-play').addEventListener('click', () => (video.paused ? video.play() : video.pause()));
  $('player-back').addEventListener('click', () => step(-1));
  $('player-forward').addEventListener('click', () => step(1));
  $('player-seek').addEventListener('input', (e) => { video.currentTime = Math.max(0, Number(e.target.value) - player.offset); });
  $('player-speed').addEventListener('change', (e) => { video.playbackRate = Number(e.target.value); });
  video.addEventListener('timeupdate', playerTick);
  video.addEventListener('seeked', playerTick);

  $('grid-layout').addEventListener('change', (e) => setLayout(e.target.value));
  $('grid-play').addEventListener('click', () => {
    grid.playing = !grid.playing;
    for (const v of tileVideos()) { if (grid.playing) v.play().catch(() => {}); else v.pause(); }
    $('grid-play').textContent = grid.playing ? '暂停' : '播放';
  });
  $('grid-seek').addEventListener('input', (e) => gridSeek(Number(e.target.value)));
  $('grid-go').addEventListener('click', () => gridSeek(seconds(cst($('grid-time').value)) - grid.start));
  $('grid-speed').addEventListener('change', (e) => { for (const v of tileVideos()) v.playbackRate = Number(e.target.value); });
  setInterval(gridTick, 250);

  try {
    const detail = await api('GET', `/api/projects/${encodeURIComponent(project)}`);
    // A first guess at the window: opening, ten minutes either side of a four-hour evaluation.
    const opening = seconds(detail.project.opening);
    $('pull-start').value = toLocalInput(opening - 600);
    $('pull-end').value = toLocalInput(opening + 4 * 3600 + 600);
  } catch (e) {
    showError(e.message);
  }
  nvrNames = (await api('GET', '/api/video/nvrs')).map((n) => n.name);
  await loadChannels();
  await loadPulls();
  // A link from search opens a pull in the player at a time of its window
  // (?pull=ID&t=SECONDS from the window start).
  const wanted = Number(params.get('pull'));
  if (wanted) {
    const pull = pulls.find((p) => p.id === wanted && p.status === 'done');
    if (!pull) {
      showError(`录像 ${wanted} 不存在或尚未拉取完成`);
      return;
    }
    openPlayer(pull);
    const t = Math.max(0, Number(params.get('t')) || 0);
    $('player-seek').value = String(t);
    video.currentTime = Math.max(0, t - player.offset);
  }
}

init().catch((e) => showError(e.message));
