// The gates page: registry with state, expert draws per project, and the project's gate events
// with their snapshots. ID numbers arrive masked from the API; this page never asks for more.
'use strict';


const KINDS = {
  badge: '刷证', door_held_open: '门长时间未关', tamper: '防拆报警', reader_fault: '读卡器故障',
  reader_ok: '读卡器恢复', offline: '与中心断开', online: '与中心恢复', started: '门禁启动',
};
const REASONS = {
  not_drawn_today: '非今日抽取专家', outside_window: '不在评标时段内', expired_card: '身份证已过期', unreadable_card: '身份证无法读取',
};

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text == null ? '—' : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function time(text) {
  return text ? text.replace('T', ' ').replace(/\+08:00$/, '') : '—';
}

/** datetime-local gives local wall time; the trading center is in China Standard Time. */
function cst(value) {
  return value.length === 16 ? `${value}:00+08:00` : `${value}+08:00`;
}

async function loadGates() {
  const gates = await api('GET', '/api/gates');
  const body = $('gates-table').querySelector('tbody');
  body.replaceChildren();
  for (const gate of gates) {
    const row = document.createElement('tr');
    const name = cell(row, '');
    const dot = document.createElement('span');
    dot.className = `dot ${gate.online ? 'online' : 'offline'}`;
    name.append(dot, gate.name);
    cell(row, gate.location || '—');
    cell(row, gate.online ? '在线' : '离线');
    cell(row, gate.projects.join('、') || '—');
    cell(row, gate.last_event_kind ? `${KINDS[gate.last_event_kind] || gate.last_event_kind} #${gate.last_sequence}` : '—');
    cell(row, gate.queue_depth);
    cell(row, time(gate.last_seen_at));
    body.appendChild(row);
  }
  if (!gates.length) {
    const row = document.createElement('tr');
    cell(row, '尚未登记门禁').colSpan = 7;
    body.appendChild(row);
  }
}

async function loadProjects() {
  const projects = await api('GET', '/api/projects');
  const select = $('project-select');
  select.replaceChildren(...projects.map((p) => new Option(`${p.number} ${p.name}`, p.number)));
  if (projects.length) await loadProject();
}

async function loadProject() {
  const number = $('project-select').value;
  if (!number) return;
  const path = `/api/projects/${encodeURIComponent(number)}`;
  const [draws, events] = await Promise.all([api('GET', `${path}/draws`), api('GET', `${path}/gate-events?limit=200`)]);
  const drawBody = $('draws-table').querySelector('tbody');
  drawBody.replaceChildren();
  for (const draw of draws) {
    const row = document.createElement('tr');
    cell(row, draw.name); cell(row, draw.id_number); cell(row, time(draw.window_start));
    cell(row, time(draw.window_end)); cell(row, draw.created_by);
    drawBody.appendChild(row);
  }
  const eventBody = $('events-table').querySelector('tbody');
  eventBody.replaceChildren();
  for (const event of events) {
    const row = document.createElement('tr');
    cell(row, time(event.at)); cell(row, event.gate); cell(row, event.sequence);
    cell(row, KINDS[event.kind] || event.kind);
    cell(row, event.name ? `${event.name} ${event.id_number || ''}` : (event.detail || '—'));
    if (event.kind === 'badge') {
      cell(row, event.allowed ? '放行' : `拒绝：${REASONS[event.reason] || event.reason}`, event.allowed ? '' : 'denied');
    } else {
      cell(row, '—');
    }
    const shot = cell(row, '');
    if (event.has_snapshot) {
      const img = document.createElement('img');
      img.className = 'snapshot';
      img.alt = '抓拍';
      img.loading = 'lazy';
      img.src = `/api/gate-events/${event.id}/snapshot`;
      shot.appendChild(img);
    } else {
      shot.textContent = '—';
    }
    eventBody.appendChild(row);
  }
}

async function registerGate(e) {
  e.preventDefault();
  const projects = $('gate-projects').value.split(/[,，\s]+/).filter(Boolean);
  const created = await api('POST', '/api/gates', { name: $('gate-name').value, location: $('gate-location').value, projects });
  const token = $('gate-token');
  token.hidden = false;
  token.textContent = created.token
    ? `门禁令牌（只显示这一次，请写入门禁的 --token-file）：${created.token}`
    : '已登记（使用已有令牌）';
  await loadGates();
}

async function addDraw(e) {
  e.preventDefault();
  const number = $('project-select').value;
  await api('POST', `/api/projects/${encodeURIComponent(number)}/draws`, {
    name: $('draw-name').value, id_number: $('draw-id').value,
    window_start: cst($('draw-start').value), window_end: cst($('draw-end').value),
  });
  showNotice('已录入；门禁在下次同步时（约 30 秒内）取得新名单');
  $('draw-form').reset();
  await loadProject();
}

function guarded(f) {
  return (e) => f(e).catch((error) => showError(error.message));
}

async function start() {
  $('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });
  $('gate-form').addEventListener('submit', guarded(registerGate));
  $('draw-form').addEventListener('submit', guarded(addDraw));
  $('project-select').addEventListener('change', guarded(loadProject));
  const session = await api('GET', '/api/session');
  csrf = session.csrf_token || '';
  await Promise.all([loadGates(), loadProjects()]);
  setInterval(() => loadGates().catch(() => {}), 10000);
}

start().catch((error) => showError(error.message));
