// 定时与批量刻录, 复检, and 选中刻录 in the project list. Loaded after app.js and built from its
// helpers (el, card, table, api, load, formatTime…); app.js routes #/schedules and #/inspections
// here and calls addSelectAndBurn after drawing the project list.
'use strict';

const RULE_LABELS = { immediate: '立即（保存后运行一次）', daily: '每天', weekly: '每周', monthly: '每月' };
const SELECTION_LABELS = {
  since_last_run: '上次运行以来开标、尚未归档的项目',
  category: '某一类别尚未归档的项目',
  list: '指定项目',
};
const WEEKDAY_LABELS = ['周一', '周二', '周三', '周四', '周五', '周六', '周日'];
const INSPECTION_LABELS = { running: '复检中', passed: '通过', failed: '未通过', interrupted: '中断' };

/* ------------------------------------------------------------------ schedules page */

async function renderSchedulesPage(view, generation) {
  document.title = '定时与批量刻录 · 见证';
  const schedules = await load(view, generation, () => api('GET', '/api/schedules'));
  if (!schedules) return;
  const runsBox = el('div', { class: 'schedule-runs' });
  const rows = schedules.map((s) => el('tr', { dataset: { schedule: s.id } },
    el('td', null, s.name),
    el('td', { class: 'nowrap schedule-rule' }, s.rule_zh),
    el('td', null, s.selection_zh),
    el('td', { class: 'num' }, String(s.priority)),
    el('td', { class: 'nowrap schedule-next' }, s.next_fire ? formatTime(s.next_fire) : '—'),
    el('td', { class: 'nowrap' }, s.last_fire ? formatTime(s.last_fire) : '尚未运行'),
    el('td', { class: 'nowrap' }, s.enabled ? '启用' : '停用'),
    el('td', { class: 'nowrap' },
      el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => showRuns(s, runsBox) }, '运行记录'),
      el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => toggleSchedule(s) }, s.enabled ? '停用' : '启用'),
      el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => deleteSchedule(s) }, '删除'))));
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '定时与批量刻录'),
      el('p', { class: 'page-sub' },
        '时间均为北京时间（Asia/Shanghai，无夏令时）。设备关机期间错过的运行，开机后只补运行一次。')),
    card('定时计划', refreshButton(),
      table('schedule-table', ['名称', '规则', '选择', '优先级', '下次运行', '上次运行', '状态', ''], rows,
        '暂无定时计划。'),
      runsBox),
    newScheduleCard(),
    batchCard());
}

function scheduleBody(s) {
  return {
    name: s.name, rule: s.rule, time: s.time, weekday: s.weekday, month_day: s.month_day,
    selection: s.selection, category: s.category, numbers: s.numbers, priority: s.priority, enabled: s.enabled,
  };
}

async function toggleSchedule(s) {
  clearError();
  try {
    await api('PUT', `/api/schedules/${s.id}`, { ...scheduleBody(s), enabled: !s.enabled });
    route();
  } catch (err) {
    showError(err.message);
  }
}

async function deleteSchedule(s) {
  clearError();
  if (!window.confirm(`确认删除定时计划「${s.name}」？已建立的作业不受影响。`)) return;
  try {
    await api('DELETE', `/api/schedules/${s.id}`);
    showNotice(`定时计划「${s.name}」已删除`);
    route();
  } catch (err) {
    showError(err.message);
  }
}

async function showRuns(s, box) {
  clearError();
  try {
    const runs = await api('GET', `/api/schedules/${s.id}/runs`);
    const rows = runs.map((r) => el('tr', null,
      el('td', { class: 'nowrap' }, formatTime(r.fire_at)),
      el('td', { class: 'nowrap' }, r.missed > 0 ? `停机错过 ${r.missed} 次，合并为本次` : '按时'),
      el('td', { class: 'num' }, String(r.jobs_created)),
      el('td', null, r.outcome.map((o) => el('div', null,
        o.job ? el('span', null, `${o.project}：作业 ${o.job}`) : el('span', { class: 'disc-error' }, `${o.project}：${o.error}`)))),
      el('td', { class: 'nowrap' }, r.finished_at ? '完成' : '进行中')));
    fill(box, el('h3', null, `「${s.name}」的运行记录`),
      table('run-table', ['运行时刻', '', '作业数', '结果', '状态'], rows, '尚未运行。'));
  } catch (err) {
    showError(err.message);
  }
}

function newScheduleCard() {
  const name = el('input', { id: 'schedule-name', required: true, maxlength: '100', placeholder: '每晚归档' });
  const rule = el('select', { id: 'schedule-rule' },
    Object.entries(RULE_LABELS).map(([value, text]) => el('option', { value }, text)));
  rule.value = 'daily';
  const time = el('input', { id: 'schedule-time', type: 'time', value: '02:00' });
  const weekday = el('select', { id: 'schedule-weekday' },
    WEEKDAY_LABELS.map((text, i) => el('option', { value: String(i + 1) }, text)));
  const monthDay = el('select', { id: 'schedule-day' },
    Array.from({ length: 31 }, (_, i) => el('option', { value: String(i + 1) },
      i === 30 ? '31 日（每月最后一天）' : i >= 28 ? `${i + 1} 日（无此日的月份在月末）` : `${i + 1} 日`)));
  const selection = el('select', { id: 'schedule-selection' },
    Object.entries(SELECTION_LABELS).map(([value, text]) => el('option', { value }, text)));
  const category = el('select', { id: 'schedule-category' },
    Object.entries(CATEGORY_LABELS).map(([value, text]) => el('option', { value }, text)));
  const numbers = el('textarea', { id: 'schedule-numbers', rows: '2', placeholder: '项目编号，每行一个' });
  const priority = el('input', { id: 'schedule-priority', type: 'number', min: '0', max: '9', value: '5' });
  const timeField = field('时间（北京时间）', time);
  const weekdayField = field('星期', weekday);
  const dayField = field('日期', monthDay);
  const categoryField = field('项目类别', category);
  const numbersField = field('项目编号', numbers);
  const sync = () => {
    timeField.hidden = rule.value === 'immediate';
    weekdayField.hidden = rule.value !== 'weekly';
    dayField.hidden = rule.value !== 'monthly';
    categoryField.hidden = selection.value !== 'category';
    numbersField.hidden = selection.value !== 'list';
  };
  rule.addEventListener('change', sync);
  selection.addEventListener('change', sync);
  sync();
  const form = el('form', { id: 'schedule-form', class: 'form-grid' },
    field('名称', name), field('规则', rule), timeField, weekdayField, dayField,
    field('选择项目', selection), categoryField, numbersField, field('优先级（0 最低 – 9 最高）', priority),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'btn btn-primary' }, '保存定时计划')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    const body = {
      name: name.value,
      rule: rule.value,
      time: rule.value === 'immediate' ? null : time.value,
      weekday: rule.value === 'weekly' ? Number(weekday.value) : null,
      month_day: rule.value === 'monthly' ? Number(monthDay.value) : null,
      selection: selection.value,
      category: selection.value === 'category' ? category.value : null,
      numbers: selection.value === 'list'
        ? numbers.value.split(/[\n,，;；]/).map((n) => n.trim()).filter((n) => n) : [],
      priority: Number(priority.value),
      enabled: true,
    };
    try {
      const saved = await api('POST', '/api/schedules', body);
      showNotice(`已保存：${saved.rule_zh}，下次运行 ${saved.next_fire ? formatTime(saved.next_fire) : '—'}`);
      route();
    } catch (err) {
      showError(err.message);
    }
  });
  return card('新建定时计划', null, form);
}

/* ------------------------------------------------------------------ batch import */

function batchCard() {
  const file = el('input', { id: 'batch-file', type: 'file', accept: '.xlsx' });
  const result = el('div', { id: 'batch-result' });
  const send = async (dryRun) => {
    clearError();
    if (!file.files.length) {
      showError('请先选择填好的批量刻录模板（.xlsx）');
      return;
    }
    try {
      const report = await api('POST', `/api/batch/import?dry_run=${dryRun}`, file.files[0]);
      showBatchReport(result, report);
    } catch (err) {
      showError(err.message);
    }
  };
  return card('批量导入', el('a', { class: 'btn', href: '/api/batch/template.xlsx', download: '批量刻录模板.xlsx' }, '下载模板'),
    el('p', { class: 'page-sub' },
      '按模板每行填写一个项目（项目编号、名称、类别、开标日期、源文件夹、光盘份数、优先级）。先「仅校验」查看逐行错误；导入时无错误的行登记为项目并建立备份作业，有错误的行不保存。'),
    el('div', { class: 'form-grid' }, field('模板文件', file),
      el('div', { class: 'form-actions' },
        el('button', { type: 'button', class: 'btn', id: 'batch-check', onclick: () => send(true) }, '仅校验'),
        el('button', { type: 'button', class: 'btn btn-primary', id: 'batch-import', onclick: () => send(false) }, '导入'))),
    result);
}

function showBatchReport(box, report) {
  const errors = report.errors.map((e) => el('tr', null,
    el('td', { class: 'num' }, `第 ${e.row} 行`), el('td', { class: 'nowrap' }, e.column), el('td', null, e.message)));
  const results = report.results.map((r) => el('tr', null,
    el('td', { class: 'mono' }, r.project),
    el('td', null, r.job ? el('a', { href: projectHash(r.project) }, `作业 ${r.job.id}`) : el('span', { class: 'disc-error' }, r.error))));
  fill(box,
    el('p', { class: 'batch-summary' },
      `${report.dry_run ? '仅校验（未保存）' : '已导入'}：共 ${report.rows} 行，${report.valid_rows} 行无误，${report.errors.length} 处错误`),
    report.errors.length ? table('batch-errors', ['行', '列', '问题'], errors, '') : null,
    results.length ? table('batch-results', ['项目', '作业'], results, '') : null);
}

/* ------------------------------------------------------------------ select and burn */

/** Adds a checkbox to every row of the project list and a bar to burn the chosen ones. */
function addSelectAndBurn(view) {
  const tableNode = view.querySelector('table.project-table');
  if (!tableNode || session.role === 'auditor' || session.role === 'operator') return;
  const all = el('input', { type: 'checkbox', 'aria-label': '全选' });
  tableNode.querySelector('thead tr').prepend(el('th', { scope: 'col' }, all));
  const boxes = [];
  for (const row of tableNode.querySelectorAll('tbody tr')) {
    if (!row.dataset.number) {
      row.firstChild.colSpan += 1;
      continue;
    }
    const box = el('input', { type: 'checkbox', class: 'select-project', 'aria-label': `选择 ${row.dataset.number}` });
    box.dataset.number = row.dataset.number;
    boxes.push(box);
    row.prepend(el('td', null, box));
  }
  const priority = el('select', { id: 'burn-priority' },
    Array.from({ length: 10 }, (_, i) => el('option', { value: String(i) }, `优先级 ${i}`)));
  priority.value = '5';
  const count = el('span', { class: 'muted' }, '未选择');
  const burn = el('button', { type: 'button', class: 'btn btn-primary', id: 'burn-selected', disabled: true }, '刻录选中项目');
  const update = () => {
    const n = boxes.filter((b) => b.checked).length;
    count.textContent = n ? `已选 ${n} 个项目` : '未选择';
    burn.disabled = n === 0;
  };
  all.addEventListener('change', () => { for (const b of boxes) b.checked = all.checked; update(); });
  for (const b of boxes) b.addEventListener('change', update);
  burn.addEventListener('click', async () => {
    clearError();
    const numbers = boxes.filter((b) => b.checked).map((b) => b.dataset.number);
    try {
      const results = await api('POST', '/api/backups', { numbers, priority: Number(priority.value) });
      const failed = results.filter((r) => !r.job);
      showNotice(`已为 ${results.length - failed.length} 个项目建立备份作业`);
      if (failed.length) showError(failed.map((r) => `${r.project}：${r.error}`).join('；'));
      route();
    } catch (err) {
      showError(err.message);
    }
  });
  tableNode.closest('.card-body').prepend(el('div', { class: 'select-bar' }, count, ' ', priority, ' ', burn));
}

/* ------------------------------------------------------------------ re-inspection */

async function renderInspectionsPage(view, generation) {
  document.title = '复检 · 见证';
  const data = await load(view, generation, () => Promise.all([
    api('GET', '/api/inspections/due'), api('GET', '/api/inspections')]));
  if (!data) return;
  const [due, history] = data;
  const dueRows = due.map((d) => {
    const shelf = el('input', { value: d.shelf, maxlength: '100', placeholder: '如 A柜-3层-12盒', class: 'shelf-input' });
    return el('tr', { dataset: { disc: d.disc_id } },
      el('td', { class: 'num' }, String(d.disc_id)),
      el('td', { class: 'mono nowrap' }, el('a', { href: projectHash(d.project_number) }, d.project_number)),
      el('td', { class: 'nowrap' }, label(COPY_KIND_LABELS, d.kind)),
      el('td', null, shelf,
        el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => saveShelf(d.disc_id, shelf.value) }, '保存')),
      el('td', { class: 'nowrap' }, d.last_inspected ? `${formatTime(d.last_inspected)} ${label(INSPECTION_LABELS, d.last_result)}` : '尚未复检'),
      el('td', { class: 'nowrap' }, formatTime(d.due_at),
        d.tightened ? el('span', { class: 'muted' }, '（已缩短周期）') : null),
      el('td', { class: 'nowrap' }, d.overdue ? el('span', { class: 'disc-error' }, '已到期') : '未到期'),
      el('td', { class: 'nowrap' },
        el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => inspectNow(d.disc_id) }, '立即复检')));
  });
  const historyRows = history.map((i) => el('tr', null,
    el('td', { class: 'nowrap' }, formatTime(i.started_at)),
    el('td', { class: 'num' }, String(i.disc_id)),
    el('td', { class: 'mono nowrap' }, i.project_number),
    el('td', { class: 'nowrap' }, label(INSPECTION_LABELS, i.result)),
    el('td', null, i.detail || '—'),
    el('td', { class: 'nowrap' }, i.reburn_job_id ? el('a', { href: projectHash(i.project_number) }, `重刻作业 ${i.reburn_job_id}`) : '—')));
  fill(view,
    el('div', { class: 'page-head' },
      el('h1', { class: 'page-title' }, '复检'),
      el('p', { class: 'page-sub' },
        '按 DA/T 38 定期回读已归档的光盘与硬盘副本并与目录中的摘要比对；未通过的副本自动建立重刻作业。虚拟光盘与硬盘副本到期自动复检；实体光盘需人工放入光驱，系统尚不支持。')),
    card('在架副本与复检计划', refreshButton(),
      table('due-table', ['编号', '项目', '类型', '存放位置', '上次复检', '下次复检', '', ''], dueRows, '暂无已校验的副本。')),
    card('复检记录', null,
      table('inspection-table', ['时间', '编号', '项目', '结果', '问题', '处理'], historyRows, '尚无复检记录。')));
}

async function saveShelf(id, shelf) {
  clearError();
  try {
    await api('PUT', `/api/discs/${id}/shelf`, { shelf });
    showNotice(`副本 ${id} 的存放位置已保存`);
  } catch (err) {
    showError(err.message);
  }
}

async function inspectNow(id) {
  clearError();
  showNotice(`正在复检副本 ${id}…`);
  try {
    const result = await api('POST', `/api/discs/${id}/inspect`);
    if (result.result === 'passed') {
      showNotice(`副本 ${id} 复检通过`);
    } else {
      showError(`副本 ${id} 复检未通过：${result.detail}${result.reburn_job_id ? `；已建立重刻作业 ${result.reburn_job_id}` : ''}`);
    }
    route();
  } catch (err) {
    showError(err.message);
  }
}
