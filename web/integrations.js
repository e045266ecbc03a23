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

async function targetCard(target) {
  const card = node('section', null, 'card');
  const head = node('div', null, 'card-head');
  head.append(node('h2', `${target.label}${target.configured ? '' : '（未配置）'}`));
  const body = node('div', null, 'card-body');
  const figures = node('div', null, 'figures');
  figures.append(figure('队列深度', target.queue_depth, false), figure('已确认', target.acked, false),
    figure('死信', target.dead, target.dead > 0), figure('最近成功', time(target.last_success_at), false));
  body.append(figures);
  if (!target.configured) {
    body.append(node('p', '未在配置文件中设置 [integrations.expert_library]：消息在此排队，配置后自动报送。', 'muted'));
  }
  body.append(node('h3', '失败与原因'), messageTable(target.failures, true));
  const dead = await api('GET', `/api/integrations/${target.target}/messages?state=dead&limit=50`);
  body.append(node('h3', '死信'), messageTable(dead, true));

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

async function loadProjects() {
  const projects = await api('GET', '/api/projects');
  $('codes-project').replaceChildren(...projects.map((p) => new Option(`${p.number} ${p.name}`, p.number)));
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
  await Promise.all([loadTargets(), loadProjects()]);
  $('refresh').addEventListener('click', guarded(loadTargets));
}

start().catch((error) => showError(error.message));
