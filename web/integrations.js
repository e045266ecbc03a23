// The integrations page: per target the queue depth, last success, failures with their reasons,
// dead letters with a retry button, drawing requests, the daily reconciliation report, and the
// trade codes of a project. Server text reaches the DOM only through textContent.
'use strict';

let role = '';

const STATES = { pending: '待发送', sent: '已发送待确认', acked: '已确认', dead: '死信' };
const EXCHANGES = {
  change_notice: '短信：变更公告', bid_opening: '短信：开标', clarification: '短信：标中质询', second_quotation: '短信：二次报价',
  'expert-draw-request': '专家抽取申请', 'evaluation-video': '评标监控视频', 'expert-scores': '专家评分',
  'candidate-publicity': '中标候选人公示', 'result-announcement': '中标结果公告',
  'expert-credit': '专家信用记录', 'gate-identity': '门禁身份核验',
};

function node(tag, text, className) {
  const el = document.createElement(tag);
  if (text != null) el.textContent = String(text);
  if (className) el.className = className;
  return el;
}

function time(text) {
  return text ? text.replace('T', ' ').replace(/\+08:00$/, '') : '—';
}

function today() {
  // The trading center's day, China Standard Time.
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

function figure(label, value, bad) {
  const box = node('div', null, `figure${bad ? ' bad' : ''}`);
  box.append(node('div', value, 'value'), node('div', label, 'muted'));
  return box;
}

function messageTable(messages, withRetry) {
  const table = node('table', null, 'table');
  const head = node('tr');
  for (const h of ['编号', '交换', '项目', '状态', '尝试', '下次尝试', '原因', '']) head.append(node('th', h));
  table.append(node('thead'));
  table.tHead.append(head);
  const body = node('tbody');
  for (const m of messages) {
    const row = node('tr');
    row.append(node('td', m.id), node('td', EXCHANGES[m.exchange] || m.exchange), node('td', m.project_number || '—'),
      node('td', STATES[m.state] || m.state), node('td', m.attempts),
      node('td', m.state === 'dead' ? '—' : time(m.next_attempt_at)),
      node('td', m.last_error || '—', m.fault === 'ours' ? 'fault-ours' : ''));
    const action = node('td');
    if (withRetry && role === 'admin' && m.state !== 'acked') {
      const button = node('button', '重发', 'btn');
      button.type = 'button';
      button.addEventListener('click', guarded(async () => {
        await api('POST', `/api/integrations/messages/${m.id}/retry`);
        showNotice(`消息 ${m.id} 已重新排队`);
        await loadTargets();
      }));
      action.append(button);
    }
    row.append(action);
    body.append(row);
  }
  if (!messages.length) {
    const row = node('tr');
    const td = node('td', '无', 'muted-cell');
    td.colSpan = 8;
    row.append(td);
    body.append(row);
  }
  table.append(body);
  return table;
}

const DELIVERY_STATES = {
  DELIVRD: '已送达', UNDELIV: '无法送达', EXPIRED: '已过期', REJECTD: '被拒绝', DELETED: '已删除',
  UNKNOWN: '状态未知', ACCEPTD: '已受理', ENROUTE: '投递中',
};

// SMS the gateway accepted but whose delivery report (回执) says the handset did not get them.
// They are not resent by themselves: an admin resends one as a new message.
function deliveryTable(reports) {
  const table = node('table', null, 'table');
  const head = node('tr');
  for (const h of ['编号', '项目', '类型', '投标人', '手机', '回执', '原因', '回执时间', '']) head.append(node('th', h));
  table.append(node('thead'));
  table.tHead.append(head);
  const body = node('tbody');
  for (const r of reports) {
    const row = node('tr');
    row.append(node('td', r.id), node('td', r.project_number || '—'), node('td', EXCHANGES[r.exchange] || r.exchange),
      node('td', r.bidder || '—'), node('td', r.phone || '—'),
      node('td', `${DELIVERY_STATES[r.delivery_state] || r.delivery_state}（${r.delivery_state}）`, 'fault-ours'),
      node('td', r.delivery_error || '—'), node('td', time(r.delivery_reported_at)));
    const action = node('td');
    if (r.resent_as) {
      action.append(node('span', `已重发为消息 ${r.resent_as}`, 'muted'));
    } else if (role === 'admin') {
      const button = node('button', '人工重发', 'btn');
      button.type = 'button';
      button.addEventListener('click', guarded(async () => {
        if (!window.confirm(`网关已接收消息 ${r.id}，但回执为“${DELIVERY_STATES[r.delivery_state] || r.delivery_state}”。确认向 ${r.phone} 再发一条新短信？`)) return;
        const resent = await api('POST', `/api/integrations/sms/messages/${r.id}/resend`);
        showNotice(`已作为新消息 ${resent.id} 排队重发`);
        await loadTargets();
      }));
      action.append(button);
    }
    row.append(action);
    body.append(row);
  }
  if (!reports.length) {
    const row = node('tr');
    const td = node('td', '无', 'muted-cell');
    td.colSpan = 9;
    row.append(td);
    body.append(row);
  }
  table.append(body);
  return table;
}

// The data sets (在线监管平台) or stages (财政局) of a target: what in the catalog feeds each,
// or 尚不支持 when nothing does, and a form to extract one of a project again (重新推送).
function dataSetSection(target, sets) {
  const box = node('div');
  const table = node('table', null, 'table');
  const head = node('tr');
  for (const h of ['数据集', '接口名', '数据来源（触发）']) head.append(node('th', h));
  table.append(node('thead'));
  table.tHead.append(head);
  const body = node('tbody');
  for (const s of sets) {
    const row = node('tr');
    row.append(node('td', s.label), node('td', s.name),
      node('td', s.source || '尚不支持（本系统目录中没有此类数据）', s.source ? '' : 'muted-cell'));
    body.append(row);
  }
  table.append(body);
  const form = node('form', null, 'form-grid');
  const project = node('select');
  project.replaceChildren(...projectOptions());
  const dataSet = node('select');
  dataSet.replaceChildren(...sets.filter((s) => s.source).map((s) => new Option(s.label, s.name)));
  const button = node('button', '重新推送', 'btn');
  button.type = 'submit';
  form.append(project, dataSet, button);
  form.addEventListener('submit', guarded(async (e) => {
    e.preventDefault();
    const done = await api('POST', `/api/integrations/${target.target}/extractions`,
      { data_set: dataSet.value, project_number: project.value });
    showNotice(`已排队 ${done.message_ids.length} 条消息`);
    await loadTargets();
  }));
  box.append(table, node('p', '项目数据更正后，或对接目标配置之前的数据，可按数据集重新推送（作为新消息）。', 'muted'), form);
  return box;
}

async function targetCard(target) {
  const sets = await api('GET', `/api/integrations/${target.target}/data-sets`);
  for (const s of sets) EXCHANGES[s.name] = s.label;
  const card = node('section', null, 'card');
  const head = node('div', null, 'card-head');
  head.append(node('h2', `${target.label}${target.configured ? '' : '（未配置）'}`));
  const body = node('div', null, 'card-body');
  const figures = node('div', null, 'figures');
  figures.append(figure('队列深度', target.queue_depth, false), figure('已确认', target.acked, false),
    figure('死信', target.dead, target.dead > 0), figure('最近成功', time(target.last_success_at), false));
  body.append(figures);
  if (!target.configured) {
    body.append(node('p', sets.length
      ? `未在配置文件中设置 [integrations.${target.target}]：不生成报送消息；配置后可按数据集重新推送此前的数据。`
      : `未在配置文件中设置 [integrations.${target.target}]：消息在此排队，配置后自动报送。`, 'muted'));
  }
  if (sets.length) body.append(node('h3', '数据集'), dataSetSection(target, sets));
  body.append(node('h3', '失败与原因'), messageTable(target.failures, true));
  const dead = await api('GET', `/api/integrations/${target.target}/messages?state=dead&limit=50`);
  body.append(node('h3', '死信'), messageTable(dead, true));
  if (target.target === 'sms') {
    const failed = await api('GET', '/api/integrations/sms/deliveries?failed=true&limit=50');
    body.append(node('h3', '回执失败（网关已接收，手机未收到）'), deliveryTable(failed));
  }

  const actions = node('div', null, 'form-grid');
  const drawButton = node('button', '为今日开标项目申请抽取专家', 'btn');
  drawButton.type = 'button';
  drawButton.addEventListener('click', guarded(async () => {
    const done = await api('POST', `/api/integrations/${target.target}/draw-requests`, {});
    showNotice(done.message_ids.length ? `已排队 ${done.message_ids.length} 个抽取申请` : '今日开标项目均已申请过');
    await loadTargets();
  }));
  const day = node('input');
  day.type = 'date';
  day.value = today();
  const reportButton = node('button', '生成对账报告', 'btn');
  reportButton.type = 'button';
  const report = node('div');
  reportButton.addEventListener('click', guarded(async () => {
    const r = await api('POST', `/api/integrations/${target.target}/reports/${day.value}`);
    report.replaceChildren(node('p', `${r.day}：共 ${r.total} 条，已确认 ${r.acked}，失败 ${r.failed}，等待 ${r.waiting}`
      + `${r.all_delivered ? '，全部送达' : ''}（已归档：${r.file}）`));
    const table = node('table', null, 'table');
    const headRow = node('tr');
    for (const h of ['统一交易标识码', '标段', '交换', '合计', '已发送', '已确认', '失败', '等待', '重复应答']) headRow.append(node('th', h));
    table.append(headRow);
    for (const l of r.lines) {
      const row = node('tr');
      for (const v of [l.unified_deal_code || '（缺失）', l.bid_section_code || '（缺失）', EXCHANGES[l.exchange] || l.exchange,
        l.total, l.sent, l.acked, l.failed, l.waiting, l.duplicate_replies]) row.append(node('td', v));
      table.append(row);
    }
    report.append(table);
  }));
  // Drawing requests go to the expert library only.
  if (target.target === 'expert_library') actions.append(drawButton);
  actions.append(day, reportButton);
  body.append(node('h3', '操作'), actions, report);
  card.append(head, body);
  return card;
}

async function loadTargets() {
  const targets = await api('GET', '/api/integrations');
  const cards = [];
  for (const target of targets) cards.push(await targetCard(target));
  $('targets').replaceChildren(...cards);
}

let projects = [];

function projectOptions() {
  return projects.map((p) => new Option(`${p.number} ${p.name}`, p.number));
}

async function loadProjects() {
  projects = await api('GET', '/api/projects');
  $('codes-project').replaceChildren(...projectOptions());
}

async function saveCodes(e) {
  e.preventDefault();
  const number = $('codes-project').value;
  await api('PUT', `/api/projects/${encodeURIComponent(number)}/trade-codes`, {
    unified_deal_code: $('codes-deal').value, bid_section_code: $('codes-section').value,
  });
  showNotice(`已保存项目 ${number} 的交易编码`);
}

function guarded(f) {
  return (e) => f(e).catch((error) => showError(error.message));
}

async function start() {
  $('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });
  $('codes-form').addEventListener('submit', guarded(saveCodes));
  const session = await api('GET', '/api/session');
  csrf = session.csrf_token || '';
  role = session.role || '';
  // Projects first: the data-set forms of the target cards list them.
  await loadProjects();
  await loadTargets();
  $('refresh').addEventListener('click', guarded(loadTargets));
}

start().catch((error) => showError(error.message));
