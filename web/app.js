// 见证 · 评标档案归档系统 — browser UI.
//
// Plain JavaScript, no build step and no external resources. Every piece of data
// from the server reaches the DOM through textContent / attributes (see `el`),
// never through innerHTML.
'use strict';

/* ------------------------------------------------------------------ labels */

const CATEGORY_LABELS = {
  construction: '工程建设',
  procurement: '政府采购',
  land: '土地使用权',
  mining: '矿业权',
  property: '国有产权',
};

const PROJECT_STATUS_LABELS = {
  registered: '未归档',
  archiving: '归档中',
  archived: '已归档',
  failed: '失败',
};

const SOURCE_KIND_LABELS = {
  document: '文档',
  video: '视频',
  audio: '音频',
  other: '其他',
};

const JOB_STATUS_LABELS = {
  queued: '排队中',
  running: '进行中',
  succeeded: '已完成',
  failed: '失败',
};

const JOB_STEPS = ['collect', 'package', 'plan', 'burn', 'verify', 'record', 'done'];

const JOB_STEP_LABELS = {
  collect: '收集',
  package: '封装',
  plan: '分卷规划',
  burn: '刻录',
  verify: '校验',
  record: '登记',
  done: '完成',
};

const COPY_KIND_LABELS = {
  optical: '光盘',
  disk: '硬盘',
};

const DISC_STATUS_LABELS = {
  writing: '写入中',
  written: '待校验',
  verified: '已校验',
  rejected: '已报废',
};

const DRIVE_KIND_LABELS = {
  virtual: '虚拟刻录机',
  optical: '光盘刻录机',
};

const DRIVE_STATE_LABELS = {
  idle: '空闲',
  loading: '装盘中',
  recording: '刻录中',
  verifying: '校验中',
  record_failed: '刻录失败',
  verify_failed: '校验失败',
  complete: '完成',
  out_of_service: '已停用',
};

const JOB_POLL_MS = 500;

/** Returns the Chinese label for `value`, or the raw value when it is unknown. */
function label(table, value) {
  return Object.prototype.hasOwnProperty.call(table, value) ? table[value] : String(value);
}

function isActiveJob(job) {
  return job.status === 'queued' || job.status === 'running';
}

/* ------------------------------------------------------------------ formatting */

function pad2(n) {
  return String(n).padStart(2, '0');
}

/** RFC 3339 → local "YYYY-MM-DD HH:mm"; anything unparsable is shown as is. */
function formatTime(text) {
  if (!text) return '—';
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return String(text);
  // Trading-center times are China Standard Time whatever the browser's zone (UTC+8, no DST).
  const china = new Date(d.getTime() + 8 * 3600 * 1000);
  return `${china.getUTCFullYear()}-${pad2(china.getUTCMonth() + 1)}-${pad2(china.getUTCDate())} ` +
    `${pad2(china.getUTCHours())}:${pad2(china.getUTCMinutes())}`;
}

/**
 * Bytes → "1.5 GB". Decimal multiples, the way disc capacities are printed
 * (a 25 GB BD-R shows as 25.0 GB, not 23.3).
 */
function formatBytes(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '—';
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let value = n;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

function formatPercent(done, total) {
  if (!total) return '';
  return `${Math.min(100, Math.floor((done / total) * 100))}%`;
}

/** `<input type="datetime-local">` value → RFC 3339 in Beijing time. */
function localInputToRfc3339(value) {
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}+08:00`;
}

/* ------------------------------------------------------------------ DOM helpers */

/**
 * Creates an element. `attrs` keys: `class`, `dataset` (object), `on<event>` (listener),
 * properties such as `value`, `disabled`, `hidden`, and anything else as an attribute.
 * Children are nodes or strings (inserted as text), null/false are skipped.
 */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') {
      node.className = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'value' || key === 'disabled' || key === 'hidden' ||
      key === 'checked' || key === 'required' || key === 'multiple') {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  appendChildren(node, children);
  return node;
}

function appendChildren(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `node` with `children`. */
function fill(node, ...children) {
  node.replaceChildren();
  appendChildren(node, children);
  return node;
}

function badge(kind, status, text, extraClass) {
  return el('span', {
    class: `badge badge-${kind}-${status}${extraClass ? ` ${extraClass}` : ''}`,
    dataset: { status },
  }, text);
}

function table(className, headers, rows, emptyText) {
  const body = rows.length
    ? rows
    : [el('tr', { class: 'empty-row' }, el('td', { colspan: headers.length }, emptyText))];
  return el('div', { class: 'table-wrap' },
    el('table', { class: `data-table ${className}` },
      el('thead', null, el('tr', null, headers.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, body)));
}

function card(title, actions, ...body) {
  return el('section', { class: 'card' },
    el('div', { class: 'card-head' },
      el('h2', null, title),
      actions ? el('div', { class: 'card-actions' }, actions) : null),
    el('div', { class: 'card-body' }, body));
}

/* ------------------------------------------------------------------ banners */

function showError(message) {
  document.getElementById('error-text').textContent = message;
  document.getElementById('error-banner').hidden = false;
}

function clearError() {
  document.getElementById('error-banner').hidden = true;
  document.getElementById('error-text').textContent = '';
}

let noticeTimer = null;

function showNotice(message) {
  const banner = document.getElementById('notice-banner');
  document.getElementById('notice-text').textContent = message;
  banner.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { banner.hidden = true; }, 4000);
}

/* ------------------------------------------------------------------ API */

/**
 * Calls the controller. `body` is sent as JSON, except Blob/File bodies which are sent raw.
 * `onUploadProgress(loadedBytes, totalBytes)` is optional. Resolves with the parsed JSON
 * answer (or null when empty); rejects with an Error whose message is ApiError.message.
 */
function api(method, path, body, onUploadProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader('Accept', 'application/json');
    // Cookie sessions must prove every state-changing request came from this page.
    if (method !== 'GET' && session.csrf) {
      xhr.setRequestHeader('X-CSRF-Token', session.csrf);
    }
    let payload = null;
    if (body instanceof Blob) {
      payload = body;
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    } else if (body !== undefined && body !== null) {
      payload = JSON.stringify(body);
      xhr.setRequestHeader('Content-Type', 'application/json');
    }
    if (onUploadProgress) {
      xhr.upload.addEventListener('progress', (e) => onUploadProgress(e.loaded, e.total));
    }
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch (_) {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const message = data && typeof data.message === 'string' && data.message
        ? data.message
        : `服务器返回错误 ${xhr.status}`;
      const error = new Error(message);
      error.kind = data && data.kind;
      error.status = xhr.status;
      if (xhr.status === 401 && path !== '/api/login') {
        // The session ended (expired, logged out elsewhere): ask for the password again.
        showLogin(path === '/api/session' ? null : message);
      }
      reject(error);
    });
    xhr.addEventListener('error', () => reject(new Error('无法连接到归档服务器，请检查网络或服务状态')));
    xhr.addEventListener('abort', () => reject(new Error('请求已取消')));
    xhr.send(payload);
  });
}

function projectPath(number) {
  return `/api/projects/${encodeURIComponent(number)}`;
}

function filePath(number, relPath) {
  const segments = relPath.split('/').filter((s) => s.length > 0).map(encodeURIComponent);
  return `${projectPath(number)}/files/${segments.join('/')}`;
}

function projectHash(number) {
  return `#/projects/${encodeURIComponent(number)}`;
}

/* ------------------------------------------------------------------ routing */

// Every render bumps the generation; timers and pending answers of an older page are ignored.
const state = {
  generation: 0,
  timers: new Set(),
  polling: new Set(),
};

function isCurrent(generation) {
  return generation === state.generation;
}

function later(generation, ms, fn) {
  const id = setTimeout(() => {
    state.timers.delete(id);
    if (isCurrent(generation)) fn();
  }, ms);
  state.timers.add(id);
}

function leavePage() {
  state.generation += 1;
  for (const id of state.timers) clearTimeout(id);
  state.timers.clear();
  state.polling.clear();
}

function parseRoute(hash) {
  const path = (hash || '').replace(/^#/, '') || '/';
  const project = path.match(/^\/projects\/(.+)$/);
  if (project) {
    try {
      return { page: 'project', number: decodeURIComponent(project[1]) };
    } catch (_) {
      return { page: 'missing' };
    }
  }
  if (path === '/' || path === '/projects') return { page: 'projects' };
  if (path === '/discs') return { page: 'discs' };
  if (path === '/drives') return { page: 'drives' };
  if (path === '/audit') return { page: 'audit' };
  if (path === '/admin') return { page: 'admin' };
  if (path === '/schedules') return { page: 'schedules' };
  if (path === '/inspections') return { page: 'inspections' };
  return { page: 'missing' };
}

function highlightNav(page) {
  const section = page === 'project' ? 'projects' : page;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

function route() {
  leavePage();
  clearError();
  const generation = state.generation;
  const view = document.getElementById('view');
  const target = parseRoute(location.hash);
  highlightNav(target.page);
  fill(view, el('p', { class: 'loading' }, '加载中…'));
  const pages = {
    projects: () => renderProjectList(view, generation),
    project: () => renderProjectPage(view, generation, target.number),
    discs: () => renderDiscsPage(view, generation),
    drives: () => renderDrivesPage(view, generation),
    audit: () => renderAuditPage(view, generation),
    admin: () => renderAdminPage(view, generation),
    // Defined in schedules.js.
    schedules: () => renderSchedulesPage(view, generation),
    inspections: () => renderInspectionsPage(view, generation),
    missing: () => renderMissing(view),
  };
  pages[target.page]();
}

function renderMissing(view) {
  document.title = '页面不存在 · 见证';
  fill(view,
    el('h1', { class: 'page-title' }, '页面不存在'),
    el('p', null, el('a', { href: '#/' }, '返回项目列表')));
}

/** Loads data for a page; shows failures in the banner and a short note in the view. */
async function load(view, generation, loader) {
  try {
    const data = await loader();
    return isCurrent(generation) ? data : null;
  } catch (err) {
    if (isCurrent(generation)) {
      showError(err.message);
      fill(view, el('p', { class: 'load-failed' }, '数据加载失败。'),
        el('button', { type: 'button', class: 'btn', onclick: route }, '重试'));
    }
    return null;
  }
}

/* ------------------------------------------------------------------ project list */

async function renderProjectList(view, generation) {
  document.title = '项目 · 见证';
  const projects = await load(view, generation, () => api('GET', '/api/projects'));
  if (!projects) return;
  projects.sort((a, b) => String(b.opening).localeCompare(String(a.opening)));
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '项目'),
      el('p', { class: 'page-sub' }, `共 ${projects.length} 个项目`)),
    newProjectCard(),
    card('项目列表', refreshButton(), projectTable(projects)));
  addSelectAndBurn(view);
}

function refreshButton() {
  return el('button', { type: 'button', class: 'btn btn-quiet', onclick: route }, '刷新');
}

function projectTable(projects) {
  const rows = projects.map((p) => el('tr', { dataset: { number: p.number } },
    el('td', { class: 'mono nowrap' }, el('a', { href: projectHash(p.number) }, p.number)),
    el('td', { class: 'name-cell' }, el('a', { href: projectHash(p.number) }, p.name)),
    el('td', { class: 'nowrap' }, label(CATEGORY_LABELS, p.category)),
    el('td', { class: 'nowrap num' }, formatTime(p.opening)),
    el('td', { class: 'num' }, String(p.file_count)),
    el('td', { class: 'num nowrap' }, formatBytes(p.total_bytes)),
    el('td', { class: 'nowrap' },
      badge('project', p.status, label(PROJECT_STATUS_LABELS, p.status), 'project-status'))));
  return table('project-table',
    ['项目编号', '项目名称', '类别', '开标时间', '文件数', '大小', '状态'],
    rows, '暂无项目。请在上方登记第一个项目。');
}

function newProjectCard() {
  const categoryOptions = Object.entries(CATEGORY_LABELS)
    .map(([value, text]) => el('option', { value }, text));
  const form = el('form', { id: 'new-project-form', class: 'form-grid', onsubmit: submitNewProject },
    field('项目编号', el('input', {
      id: 'new-number', name: 'number', required: true, autocomplete: 'off',
      placeholder: '如 LKGC-2026-0318', maxlength: 64,
    })),
    field('项目名称', el('input', {
      id: 'new-name', name: 'name', required: true, autocomplete: 'off',
      placeholder: '与交易公告一致的项目全称', maxlength: 200,
    }), 'field-wide'),
    field('类别', el('select', { id: 'new-category', name: 'category', required: true },
      categoryOptions)),
    field('开标时间', el('input', {
      id: 'new-opening', name: 'opening', type: 'datetime-local', required: true,
    })),
    el('div', { class: 'form-actions' },
      el('button', { type: 'submit', class: 'btn btn-primary', id: 'new-project-submit' }, '登记项目')));
  return card('登记新项目', null, form);
}

function field(text, control, extraClass) {
  return el('label', { class: `field${extraClass ? ` ${extraClass}` : ''}` },
    el('span', { class: 'field-label' }, text), control);
}

async function submitNewProject(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const submit = form.querySelector('button[type="submit"]');
  const body = {
    number: form.elements.number.value.trim(),
    name: form.elements.name.value.trim(),
    category: form.elements.category.value,
    opening: localInputToRfc3339(form.elements.opening.value),
  };
  if (!body.number || !body.name || !form.elements.opening.value) {
    showError('请填写项目编号、项目名称和开标时间。');
    return;
  }
  clearError();
  submit.disabled = true;
  try {
    const project = await api('POST', '/api/projects', body);
    showNotice(`已登记项目 ${project.number}`);
    location.hash = projectHash(project.number);
  } catch (err) {
    showError(err.message);
  } finally {
    submit.disabled = false;
  }
}

/* ------------------------------------------------------------------ project page */

async function renderProjectPage(view, generation, number) {
  document.title = `${number} · 见证`;
  const detail = await load(view, generation, () => api('GET', projectPath(number)));
  if (!detail) return;
  document.title = `${detail.project.name} · 见证`;
  const sections = {
    meta: el('div', { id: 'project-meta' }),
    files: el('div', { id: 'file-section' }),
    jobs: el('div', { id: 'job-list', class: 'job-list' }),
    discs: el('div', { id: 'disc-section' }),
  };
  const page = { generation, number, sections, detail };
  fill(view,
    el('p', { class: 'crumbs' }, el('a', { href: '#/' }, '项目'), ' / ', number),
    sections.meta,
    el('div', { class: 'two-col' },
      card('归档', null, backupPanel(page)),
      card('上传文件', null, uploadPanel(page))),
    card('盘面预览', null, labelPreviewPanel(number)),
    card('文件', null, sections.files),
    card('备份任务', null, sections.jobs),
    card('光盘与副本', null, sections.discs));
  showDetail(page);
}

/** Draws every section of the project page from `page.detail`. */
function showDetail(page) {
  const { project, files, jobs, discs } = page.detail;
  fill(page.sections.meta, projectMeta(project));
  fill(page.sections.files, fileTable(files));
  fill(page.sections.discs, discTable(discs, false));
  jobs.sort((a, b) => b.id - a.id);
  fill(page.sections.jobs, jobs.length
    ? jobs.map(jobRow)
    : el('p', { class: 'empty' }, '尚未备份。点击“一键备份”开始刻录并校验。'));
  updateBackupButton(page);
  for (const job of jobs) {
    if (isActiveJob(job)) pollJob(page, job.id);
  }
}

async function reloadDetail(page) {
  try {
    const detail = await api('GET', projectPath(page.number));
    if (!isCurrent(page.generation)) return;
    page.detail = detail;
    showDetail(page);
  } catch (err) {
    if (isCurrent(page.generation)) showError(err.message);
  }
}

function projectMeta(p) {
  const item = (term, value) => el('div', { class: 'meta-item' },
    el('dt', null, term), el('dd', null, value));
  return el('div', { class: 'project-head' },
    el('div', { class: 'project-title-row' },
      el('h1', { class: 'page-title' }, p.name),
      badge('project', p.status, label(PROJECT_STATUS_LABELS, p.status), 'project-status badge-lg')),
    el('dl', { class: 'meta-grid' },
      item('项目编号', el('span', { class: 'mono' }, p.number)),
      item('类别', label(CATEGORY_LABELS, p.category)),
      item('开标时间', formatTime(p.opening)),
      item('文件', `${p.file_count} 个，共 ${formatBytes(p.total_bytes)}`),
      item('登记时间', formatTime(p.created_at))));
}

function fileTable(files) {
  const sorted = [...files].sort((a, b) => a.rel_path.localeCompare(b.rel_path, 'zh-CN'));
  const rows = sorted.map((f) => el('tr', { dataset: { fileId: f.id } },
    el('td', { class: 'mono path-cell' }, f.rel_path),
    el('td', { class: 'nowrap' }, el('span', { class: `kind kind-${f.kind}` },
      label(SOURCE_KIND_LABELS, f.kind))),
    el('td', { class: 'num nowrap' }, formatBytes(f.size)),
    el('td', { class: 'num nowrap muted' }, formatTime(f.added_at))));
  return table('file-table', ['路径', '类型', '大小', '添加时间'], rows,
    '尚无文件。请先上传评标文件、录像和录音。');
}

/* ---------- backup */

function backupPanel(page) {
  page.backupButton = el('button', {
    type: 'button', id: 'backup-button', class: 'btn btn-backup',
    onclick: () => startBackup(page),
  }, '一键备份');
  return el('div', { class: 'backup-panel' },
    page.backupButton,
    el('p', { class: 'hint' },
      '将本项目的全部文件封装为档案包，按副本策略刻录光盘并逐盘校验后登记。'),
    // Evaluation video (issue 4) lives on its own page: rooms, NVR pulls, replay.
    el('p', { class: 'hint' },
      el('a', { id: 'video-link', href: `/video.html?project=${encodeURIComponent(page.number)}` },
        '评标录像：从录像机拉取与回放')));
}

function updateBackupButton(page) {
  const busy = page.detail.jobs.some(isActiveJob) || page.backupStarting;
  page.backupButton.disabled = Boolean(busy);
  page.backupButton.textContent = busy ? '备份进行中…' : '一键备份';
}

async function startBackup(page) {
  clearError();
  page.backupStarting = true;
  updateBackupButton(page);
  try {
    const job = await api('POST', `${projectPath(page.number)}/backup`);
    if (!isCurrent(page.generation)) return;
    showNotice(`已创建备份任务 #${job.id}`);
    page.detail.jobs = [job, ...page.detail.jobs.filter((j) => j.id !== job.id)];
    page.backupStarting = false;
    showDetail(page);
  } catch (err) {
    if (isCurrent(page.generation)) showError(err.message);
  } finally {
    page.backupStarting = false;
    if (isCurrent(page.generation)) updateBackupButton(page);
  }
}

/* ---------- disc face */

/** The face the discs of this project will be printed with, rendered by the server at 300 dpi. */
function labelPreviewPanel(number) {
  const base = `${projectPath(number)}/label-preview`;
  const note = el('p', { class: 'hint' },
    '刻录完成后打印在光盘上的盘面（第 1 张；刻录日期为今天）。扫描二维码可打开本项目页面。 ',
    el('a', { href: `${base}?format=pdf`, target: '_blank', rel: 'noopener' }, '打开 PDF'));
  const image = el('img', {
    src: base, alt: '盘面预览', class: 'label-face', id: 'label-preview',
    onerror: () => fill(note, el('span', { class: 'disc-error' }, '无法生成盘面预览，请查看服务日志。')),
  });
  return el('div', { class: 'label-preview' }, image, note);
}

/* ---------- jobs */

function jobRow(job) {
  const progress = el('progress', { class: 'job-progress', max: Math.max(job.total_bytes, 1) });
  if (job.total_bytes > 0) {
    progress.value = Math.min(job.done_bytes, job.total_bytes);
  } else if (job.status === 'succeeded') {
    progress.value = 1;
  } else if (!isActiveJob(job)) {
    progress.value = 0;
  } // else: indeterminate while the step has no byte count yet
  const bytes = job.total_bytes > 0
    ? `${formatBytes(job.done_bytes)} / ${formatBytes(job.total_bytes)}（${formatPercent(job.done_bytes, job.total_bytes)}）`
    : '';
  return el('article', { class: `job job-${job.status}`, dataset: { jobId: job.id } },
    el('div', { class: 'job-head' },
      el('span', { class: 'job-id' }, `任务 #${job.id}`),
      badge('job', job.status, label(JOB_STATUS_LABELS, job.status), 'job-status'),
      el('span', { class: 'job-copies' },
        '已校验副本 ', el('strong', { class: 'job-copies-count' },
          `${job.copies_verified} / ${job.copies_expected}`)),
      el('span', { class: 'job-time muted' },
        `创建 ${formatTime(job.created_at)} · 更新 ${formatTime(job.updated_at)}`)),
    stepTrack(job),
    el('div', { class: 'job-progress-row' },
      progress,
      el('span', { class: 'job-bytes num' }, bytes)),
    el('p', { class: 'job-message' }, job.message || ''),
    job.error ? el('p', { class: 'job-error' }, `错误：${job.error}`) : null);
}

/** The seven steps as a row of chips: finished ones ticked, the current one highlighted. */
function stepTrack(job) {
  const current = JOB_STEPS.indexOf(job.step);
  const chips = JOB_STEPS.map((step, i) => {
    let status = 'todo';
    if (i < current || (step === 'done' && job.status === 'succeeded')) status = 'done';
    else if (i === current) status = job.status === 'failed' ? 'failed' : 'current';
    return el('li', { class: `step step-${status}`, dataset: { step } },
      label(JOB_STEP_LABELS, step));
  });
  return el('ol', { class: 'step-track', 'aria-label': `当前步骤：${label(JOB_STEP_LABELS, job.step)}` },
    chips);
}

/** Polls one job every JOB_POLL_MS while it is queued or running, redrawing its row. */
function pollJob(page, jobId) {
  if (state.polling.has(jobId)) return;
  state.polling.add(jobId);
  const tick = async () => {
    let job;
    try {
      job = await api('GET', `/api/jobs/${encodeURIComponent(jobId)}`);
    } catch (err) {
      if (!isCurrent(page.generation)) return;
      showError(err.message);
      later(page.generation, JOB_POLL_MS * 4, tick); // keep trying, more slowly
      return;
    }
    if (!isCurrent(page.generation)) return;
    const previous = page.detail.jobs.find((j) => j.id === job.id);
    page.detail.jobs = page.detail.jobs.map((j) => (j.id === job.id ? job : j));
    const row = page.sections.jobs.querySelector(`[data-job-id="${CSS.escape(String(job.id))}"]`);
    if (row) row.replaceWith(jobRow(job));
    const moved = !previous || previous.step !== job.step || previous.status !== job.status;
    if (isActiveJob(job)) {
      later(page.generation, JOB_POLL_MS, tick);
      if (moved) reloadDetail(page); // discs and project status change between steps
    } else {
      state.polling.delete(jobId);
      reloadDetail(page);
    }
  };
  later(page.generation, JOB_POLL_MS, tick);
}

/* ---------- upload */

function uploadPanel(page) {
  const filesInput = el('input', {
    type: 'file', id: 'upload-input', multiple: true, class: 'visually-hidden',
    onchange: (e) => uploadFiles(page, [...e.target.files], e.target),
  });
  const folderInput = el('input', {
    type: 'file', id: 'upload-folder-input', multiple: true, class: 'visually-hidden',
    webkitdirectory: true,
    onchange: (e) => uploadFiles(page, [...e.target.files], e.target),
  });
  page.upload = {
    progress: el('progress', { id: 'upload-progress', max: 1, value: 0 }),
    text: el('span', { id: 'upload-text', class: 'upload-text' }),
    box: null,
    buttons: [],
  };
  const pickFiles = el('button', {
    type: 'button', class: 'btn', id: 'upload-button', onclick: () => filesInput.click(),
  }, '选择文件…');
  const pickFolder = el('button', {
    type: 'button', class: 'btn btn-quiet', onclick: () => folderInput.click(),
  }, '选择文件夹…');
  page.upload.box = el('div', { class: 'upload-status', hidden: true },
    page.upload.progress, page.upload.text);
  const drop = el('div', { class: 'drop-zone' },
    el('p', null, '将文件拖到此处，或'),
    el('div', { class: 'upload-buttons' }, pickFiles, pickFolder, filesInput, folderInput),
    el('p', { class: 'hint' }, '支持评标报告、投标文件、评标录像和录音，可多选。'));
  page.upload.buttons = [filesInput, folderInput, pickFiles, pickFolder];
  wireDropZone(page, drop);
  return el('div', { class: 'upload-panel' }, drop, page.upload.box);
}

function wireDropZone(page, zone) {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('drop-active');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('drop-active'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('drop-active');
    uploadFiles(page, [...e.dataTransfer.files], null);
  });
}

/** The path a browser File gets inside the package: its folder path when a folder was picked. */
function relPathOf(file) {
  return file.webkitRelativePath || file.name;
}

async function uploadFiles(page, files, input) {
  if (!files.length || page.uploading) return;
  clearError();
  page.uploading = true;
  const ui = page.upload;
  ui.buttons.forEach((b) => { b.disabled = true; });
  ui.box.hidden = false;
  const totalBytes = files.reduce((sum, f) => sum + f.size, 0) || 1;
  ui.progress.max = totalBytes;
  let doneBytes = 0;
  const failures = [];
  for (const [i, file] of files.entries()) {
    const name = relPathOf(file);
    const show = (loaded) => {
      ui.progress.value = doneBytes + loaded;
      ui.text.textContent = `正在上传 ${i + 1} / ${files.length}：${name}` +
        `（${formatPercent(doneBytes + loaded, totalBytes)}）`;
    };
    show(0);
    try {
      await api('PUT', filePath(page.number, name), file, (loaded) => show(loaded));
    } catch (err) {
      failures.push(`${name}：${err.message}`);
    }
    doneBytes += file.size;
    if (!isCurrent(page.generation)) return;
  }
  ui.progress.value = totalBytes;
  const ok = files.length - failures.length;
  ui.text.textContent = `上传完成：成功 ${ok} 个` + (failures.length ? `，失败 ${failures.length} 个` : '');
  if (failures.length) showError(`部分文件上传失败。${failures.join('；')}`);
  page.uploading = false;
  ui.buttons.forEach((b) => { b.disabled = false; });
  if (input) input.value = '';
  await reloadDetail(page);
}

/* ------------------------------------------------------------------ discs */

function discTable(discs, withProject) {
  const kindOrder = (d) => (d.kind === 'optical' ? 0 : 1);
  const sorted = [...discs].sort((a, b) =>
    (b.job_id - a.job_id) || (kindOrder(a) - kindOrder(b)) ||
    a.target.localeCompare(b.target) || (a.set_index - b.set_index) || (a.id - b.id));
  const rows = sorted.map((d) => el('tr', { dataset: { discId: d.id } },
    withProject
      ? el('td', { class: 'mono nowrap' }, el('a', { href: projectHash(d.project_number) }, d.project_number))
      : null,
    el('td', { class: 'num nowrap' }, `${d.set_index} / ${d.set_count}`),
    el('td', { class: 'nowrap' }, d.medium.toUpperCase()),
    el('td', { class: 'nowrap' }, label(COPY_KIND_LABELS, d.kind)),
    el('td', { class: 'nowrap' }, d.target),
    el('td', { class: 'mono path-cell' }, d.location,
      d.volume_id ? el('div', { class: 'muted small' }, `卷标 ${d.volume_id}`) : null),
    el('td', { class: 'num nowrap' }, formatBytes(d.bytes)),
    el('td', { class: 'status-cell' },
      el('span', {
        class: `disc-status badge badge-disc-${d.status}`, dataset: { status: d.status },
      }, label(DISC_STATUS_LABELS, d.status)),
      d.verified_at ? el('div', { class: 'muted small' }, formatTime(d.verified_at)) : null,
      d.inspection_result === 'failed'
        ? el('div', { class: 'disc-error inspection-failed' }, `复检未通过（${formatTime(d.inspected_at)}），须重新刻录（见复检页）`)
        : null,
      d.inspection_result === 'passed'
        ? el('div', { class: 'muted small inspection-passed' }, `复检通过 ${formatTime(d.inspected_at)}`)
        : null,
      d.error ? el('div', { class: 'disc-error' }, d.error) : null),
    el('td', { class: 'num nowrap muted' }, `#${d.job_id}`),
    el('td', { class: 'nowrap' }, d.kind === 'optical' ? faceCell(d) : '—')));
  const headers = ['卷号', '介质', '类型', '目标', '位置', '大小', '状态', '任务', '盘面'];
  if (withProject) headers.unshift('项目编号');
  return table('disc-table', headers, rows, '尚无光盘或硬盘副本。');
}

/** A disc's printed face: open it, or print it again (REJECT for a rejected disc). */
function faceCell(d) {
  const reprint = el('button', {
    type: 'button', class: 'btn btn-quiet face-reprint',
    onclick: async () => {
      clearError();
      reprint.disabled = true;
      try {
        const done = await api('POST', `/api/discs/${d.id}/print`);
        showNotice(`盘面已发送到打印机 ${done.printer}（${done.reference}）`);
      } catch (err) {
        showError(err.message);
      } finally {
        reprint.disabled = false;
      }
    },
  }, '重印');
  return el('span', { class: 'face-cell' },
    el('a', { href: `/api/discs/${d.id}/label`, target: '_blank', rel: 'noopener' }, '查看'),
    ' ', reprint);
}

async function renderDiscsPage(view, generation) {
  document.title = '光盘与副本 · 见证';
  const discs = await load(view, generation, () => api('GET', '/api/discs'));
  if (!discs) return;
  const count = (status) => discs.filter((d) => d.status === status).length;
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '光盘与副本'),
      el('p', { class: 'page-sub' },
        `共 ${discs.length} 份副本：已校验 ${count('verified')}，待校验 ${count('written')}，` +
        `写入中 ${count('writing')}，已报废 ${count('rejected')}`)),
    card('全部副本', refreshButton(), discTable(discs, true)));
}

/* ------------------------------------------------------------------ drives */

async function renderDrivesPage(view, generation) {
  document.title = '刻录机 · 见证';
  const data = await load(view, generation, () => Promise.all([
    api('GET', '/api/drives'),
    api('GET', '/api/alerts'),
    // No robot configured answers 404; the page then says so instead of failing.
    api('GET', '/api/autoloader').catch(() => null),
    api('GET', '/api/printers'),
  ]));
  if (!data) return;
  const [drives, alerts, robot, printers] = data;
  const isAdmin = session.role === 'admin';
  const rows = drives.map((d) => el('tr', { dataset: { drive: d.name } },
    el('td', { class: 'nowrap' }, d.name),
    el('td', { class: 'nowrap' }, label(DRIVE_KIND_LABELS, d.kind)),
    el('td', { class: 'nowrap' }, d.medium.toUpperCase()),
    el('td', { class: 'num nowrap' }, formatBytes(d.capacity_bytes)),
    el('td', { class: 'mono path-cell' }, d.device),
    el('td', null,
      badge('drive', d.state, label(DRIVE_STATE_LABELS, d.state), 'drive-state'),
      d.out_of_service_reason
        ? el('div', { class: 'disc-error drive-reason' }, d.out_of_service_reason) : null),
    el('td', { class: 'num nowrap drive-counts' },
      el('span', { class: 'drive-good', title: '良盘（累计）' }, `良 ${d.good_discs}`), ' / ',
      el('span', { class: 'drive-bad', title: '废盘（累计）' }, `废 ${d.bad_discs}`)),
    el('td', { class: 'nowrap' },
      d.state === 'out_of_service' && isAdmin
        ? el('button', {
          type: 'button',
          class: 'btn btn-quiet return-to-service',
          onclick: () => returnToService(d.name),
        }, '恢复使用')
        : null)));
  const open = alerts.filter((a) => !a.resolved_at);
  const alertRows = alerts.slice(0, 50).map((a) => el('tr', { dataset: { alert: a.id } },
    el('td', { class: 'nowrap' }, formatTime(a.created_at)),
    el('td', { class: 'nowrap' }, a.subject),
    el('td', null, a.message),
    el('td', { class: 'nowrap' }, a.resolved_at
      ? `已处理（${a.resolved_by || ''}，${formatTime(a.resolved_at)}）`
      : badge('drive', 'out_of_service', '待处理'))));
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '刻录机'),
      el('p', { class: 'page-sub' },
        `共 ${drives.length} 台，停用 ${drives.filter((d) => d.state === 'out_of_service').length} 台，待处理告警 ${open.length} 条`)),
    card('刻录机', refreshButton(),
      table('drive-table', ['名称', '类型', '介质', '容量', '设备', '状态', '良盘 / 废盘', ''], rows,
        '未配置刻录机。')),
    robotCard(robot),
    printerCard(printers),
    card('告警', null,
      table('alert-table', ['时间', '对象', '内容', '状态'], alertRows, '没有告警。')));
}

const PRINTER_STATE_LABELS = {
  idle: '空闲', processing: '打印中', stopped: '已停止', unreachable: '无法连接',
};

/** Disc printers: every face goes to the first one. */
function printerCard(printers) {
  const rows = printers.map((p, i) => el('tr', { dataset: { printer: p.name } },
    el('td', { class: 'nowrap' }, p.name, i === 0 ? el('span', { class: 'muted small' }, '（使用中）') : null),
    el('td', { class: 'nowrap' }, p.kind === 'ipp' ? 'IPP (CUPS)' : '文件夹'),
    el('td', { class: 'nowrap' }, el('span', {
      class: p.state === 'idle' || p.state === 'processing' ? 'printer-state' : 'printer-state disc-error',
      dataset: { state: p.state },
    }, label(PRINTER_STATE_LABELS, p.state))),
    el('td', { class: 'muted' }, p.reasons.filter((r) => r !== 'none').join('；'))));
  return card('盘面打印机', null,
    table('printer-table', ['名称', '类型', '状态', '说明'], rows, '未配置打印机。'));
}

function robotCard(robot) {
  if (!robot) {
    return card('光盘机械手', null,
      el('p', { class: 'page-sub' }, '未配置机械手（[autoloader]），光盘由人工放入和取出。'));
  }
  const moves = robot.recent_moves.slice(-20).reverse().map((m) => el('tr', null,
    el('td', { class: 'num nowrap' }, String(m.seq)),
    el('td', { class: 'nowrap' }, `${m.from} → ${m.to}`),
    el('td', null, m.error ? el('span', { class: 'disc-error' }, m.error) : '成功')));
  return card(`光盘机械手（${robot.model}）`, null,
    el('dl', { class: 'meta-grid robot-meta' },
      robotItem('输入仓空白盘', robot.input_bins.join(' / '), 'robot-input'),
      robotItem('输出仓', `${robot.output_count} / ${robot.bin_capacity}`, 'robot-output'),
      robotItem('废盘仓', `${robot.reject_count} / ${robot.bin_capacity}`, 'robot-reject'),
      robotItem('状态', robot.jammed
        ? el('span', { class: 'disc-error' }, `卡住：${robot.jammed}`) : '正常', 'robot-state')),
    robot.jammed && session.role === 'admin'
      ? el('p', null, el('button', {
        type: 'button',
        class: 'btn btn-quiet clear-jam',
        onclick: clearJam,
      }, '已排除卡盘，恢复机械手'))
      : null,
    table('robot-moves', ['序号', '移动', '结果'], moves, '尚无移动记录。'));
}

function robotItem(term, value, className) {
  return el('div', { class: 'meta-item' }, el('dt', null, term), el('dd', { class: className }, value));
}

async function clearJam() {
  clearError();
  if (!window.confirm('确认机械手卡盘已人工排除？')) return;
  try {
    await api('POST', '/api/autoloader/clear-jam');
    showNotice('机械手已恢复');
    route();
  } catch (err) {
    showError(err.message);
  }
}

async function returnToService(name) {
  clearError();
  if (!window.confirm(`确认恢复刻录机 ${name}？请先确认故障已排除。`)) return;
  try {
    await api('POST', `/api/drives/${encodeURIComponent(name)}/return-to-service`);
    showNotice(`刻录机 ${name} 已恢复使用`);
    route();
  } catch (err) {
    showError(err.message);
  }
}

/* ------------------------------------------------------------------ audit log */

async function renderAuditPage(view, generation, filters) {
  document.title = '审计日志 · 见证';
  const query = filters || {};
  const params = new URLSearchParams();
  for (const key of ['actor', 'project', 'action']) {
    if (query[key]) params.set(key, query[key]);
  }
  params.set('limit', '500');
  const data = await load(view, generation, () => Promise.all([
    api('GET', `/api/audit?${params}`),
    api('GET', '/api/audit/verify'),
  ]));
  if (!data) return;
  const [entries, verification] = data;
  const inputs = {
    actor: el('input', { id: 'audit-actor', value: query.actor || '', placeholder: '操作人' }),
    project: el('input', { id: 'audit-project', value: query.project || '', placeholder: '项目编号' }),
    action: el('input', { id: 'audit-action', value: query.action || '', placeholder: '操作，如 backup' }),
  };
  const form = el('form', { id: 'audit-filter', class: 'form-grid' },
    field('操作人', inputs.actor), field('项目编号', inputs.project), field('操作', inputs.action),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '筛选')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    leavePage();
    renderAuditPage(view, state.generation, {
      actor: inputs.actor.value.trim(), project: inputs.project.value.trim(), action: inputs.action.value.trim(),
    });
  });
  const rows = entries.map((e) => el('tr', { 'data-audit-id': String(e.id) },
    el('td', { class: 'num' }, String(e.id)),
    el('td', { class: 'nowrap' }, formatTime(e.at)),
    el('td', null, e.actor),
    el('td', null, label(ROLE_LABELS, e.role)),
    el('td', { class: 'mono' }, e.action),
    el('td', { class: 'mono path-cell' }, e.target),
    el('td', null, e.project_number || ''),
    el('td', { class: 'mono' }, e.source),
    el('td', null, e.result)));
  const chain = el('p', { id: 'audit-chain', class: verification.first_broken ? 'chain-broken' : 'chain-ok' },
    verification.message);
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '审计日志'),
      el('p', { class: 'page-sub' }, '每一项改变系统状态的操作与每一次被拒绝的访问，以 SM3 哈希链串联，不可篡改。')),
    card('哈希链校验', null, chain),
    card('筛选', null, form),
    card(`记录（${entries.length}）`, refreshButton(),
      table('audit-table', ['序号', '时间', '操作人', '角色', '操作', '对象', '项目', '来源', '结果'], rows, '没有记录。')));
}

/* ------------------------------------------------------------------ users and tokens */

async function renderAdminPage(view, generation) {
  document.title = '用户与令牌 · 见证';
  const data = await load(view, generation, () => Promise.all([api('GET', '/api/users'), api('GET', '/api/tokens')]));
  if (!data) return;
  const [users, tokens] = data;
  const roleSelect = (id, machine) => {
    const select = el('select', { id });
    for (const [value, text] of Object.entries(ROLE_LABELS)) {
      if ((value === 'gate' || value === 'integration') && !machine) continue;
      select.appendChild(el('option', { value }, text));
    }
    return select;
  };
  const userName = el('input', { id: 'user-name', required: '' });
  const userPassword = el('input', { id: 'user-password', type: 'password', autocomplete: 'new-password', required: '' });
  const userRole = roleSelect('user-role', false);
  const userForm = el('form', { id: 'user-form', class: 'form-grid' },
    field('用户名', userName), field('角色', userRole), field('初始密码（至少 10 个字符）', userPassword),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '添加用户')));
  userForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    try {
      await api('POST', '/api/users', { username: userName.value.trim(), role: userRole.value, password: userPassword.value });
      showNotice('用户已添加');
      route();
    } catch (err) {
      showError(err.message);
    }
  });
  const tokenName = el('input', { id: 'token-name', required: '' });
  const tokenRole = roleSelect('token-role', true);
  const secretBox = el('p', { id: 'token-secret', class: 'mono', hidden: '' });
  const tokenForm = el('form', { id: 'token-form', class: 'form-grid' },
    field('名称', tokenName), field('角色', tokenRole),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '创建令牌')));
  tokenForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    try {
      const created = await api('POST', '/api/tokens', { name: tokenName.value.trim(), role: tokenRole.value });
      secretBox.textContent = `新令牌（只显示这一次，请妥善保存）：${created.secret}`;
      secretBox.hidden = false;
    } catch (err) {
      showError(err.message);
    }
  });
  const userRows = users.map((u) => el('tr', null,
    el('td', null, u.username), el('td', null, label(ROLE_LABELS, u.role)),
    el('td', null, u.locked_until ? `锁定至 ${formatTime(u.locked_until)}` : (u.disabled ? '已停用' : '正常')),
    el('td', { class: 'nowrap' }, formatTime(u.created_at))));
  const tokenRows = tokens.map((t) => {
    const revoke = el('button', { type: 'button', class: 'btn btn-quiet' }, '撤销');
    revoke.addEventListener('click', async () => {
      try {
        await api('DELETE', `/api/tokens/${t.id}`);
        route();
      } catch (err) {
        showError(err.message);
      }
    });
    return el('tr', null,
      el('td', null, t.name), el('td', null, label(ROLE_LABELS, t.role)), el('td', { class: 'mono' }, `${t.prefix}…`),
      el('td', null, t.created_by), el('td', { class: 'nowrap' }, t.last_used_at ? formatTime(t.last_used_at) : '从未使用'),
      el('td', null, t.revoked_at ? `已撤销 ${formatTime(t.revoked_at)}` : revoke));
  });
  fill(view,
    el('div', { class: 'page-head' }, el('h1', { class: 'page-title' }, '用户与令牌')),
    card('用户', null, table('user-table', ['用户名', '角色', '状态', '创建时间'], userRows, '没有用户。'), userForm),
    card('API 令牌（命令行、门禁、平台对接）', null,
      table('token-table', ['名称', '角色', '前缀', '创建人', '最近使用', '状态'], tokenRows, '没有令牌。'),
      tokenForm, secretBox));
}

/* ------------------------------------------------------------------ session */

// Who is logged in, and the CSRF token of the session (kept in memory only).
const session = { user: null, role: null, csrf: null };

const ROLE_LABELS = {
  admin: '系统管理员',
  archivist: '档案管理员',
  auditor: '监管审计',
  operator: '清标操作员',
  gate: '门禁代理',
  integration: '平台对接',
};

function setSession(info) {
  session.user = info ? info.username : null;
  session.role = info ? info.role : null;
  session.csrf = info ? info.csrf_token : null;
  for (const link of document.querySelectorAll('[data-roles]')) {
    link.hidden = !info || !link.dataset.roles.split(' ').includes(info.role);
  }
  const who = document.getElementById('whoami');
  const logout = document.getElementById('logout-button');
  if (info) {
    who.textContent = `${info.username}（${label(ROLE_LABELS, info.role)}）`;
    who.hidden = false;
    logout.hidden = false;
  } else {
    who.textContent = '';
    who.hidden = true;
    logout.hidden = true;
  }
}

function showLogin(message) {
  leavePage();
  setSession(null);
  const view = document.getElementById('view');
  document.title = '登录 · 见证';
  const username = el('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: '' });
  const password = el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: '' });
  const form = el('form', { id: 'login-form', class: 'form-grid' },
    field('用户名', username),
    field('密码', password),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '登录')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    try {
      const info = await api('POST', '/api/login', { username: username.value.trim(), password: password.value });
      setSession(info);
      if (info.must_change_password) {
        showChangePassword();
      } else {
        route();
      }
    } catch (err) {
      showError(err.message);
    }
  });
  fill(view,
    el('div', { class: 'page-head' }, el('h1', { class: 'page-title' }, '登录')),
    card('请登录后使用', null, form));
  if (message) showError(message);
  username.focus();
}

function showChangePassword() {
  leavePage();
  const view = document.getElementById('view');
  document.title = '修改初始密码 · 见证';
  const old = el('input', { id: 'old-password', type: 'password', autocomplete: 'current-password', required: '' });
  const fresh = el('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: '' });
  const again = el('input', { id: 'new-password-again', type: 'password', autocomplete: 'new-password', required: '' });
  const form = el('form', { id: 'password-form', class: 'form-grid' },
    field('初始密码', old),
    field('新密码（至少 10 个字符）', fresh),
    field('再次输入新密码', again),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '修改密码')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    if (fresh.value !== again.value) {
      showError('两次输入的新密码不一致');
      return;
    }
    try {
      await api('POST', '/api/account/password', { old_password: old.value, new_password: fresh.value });
      showNotice('密码已修改');
      await startSession();
    } catch (err) {
      showError(err.message);
    }
  });
  fill(view,
    el('div', { class: 'page-head' }, el('h1', { class: 'page-title' }, '修改初始密码')),
    card('首次登录须修改系统生成的一次性密码', null, form));
}

async function startSession() {
  try {
    const info = await api('GET', '/api/session');
    setSession(info);
    if (info.must_change_password) {
      showChangePassword();
    } else {
      route();
    }
  } catch (err) {
    if (err.status !== 401) showError(err.message);
  }
}

async function logout() {
  try {
    await api('POST', '/api/logout');
  } catch (_) {
    // Logged out already.
  }
  showLogin();
}

/* ------------------------------------------------------------------ start */

document.getElementById('error-close').addEventListener('click', clearError);
document.getElementById('logout-button').addEventListener('click', logout);
window.addEventListener('hashchange', () => {
  if (session.user) route();
});
startSession();
