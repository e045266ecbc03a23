// The results page: a project's bidders and their phones (SMS notices), the four SMS notices,
// and the evaluation results the catalog does not otherwise hold (expert scores, candidate
// publicity, result announcement, expert credit), recorded to be reported to the expert
// library through the outbox. Lines of pasted text are checked here first, naming the line;
// the server checks everything again.
'use strict';

const number = () => $('project').value;
const projectPath = () => `/api/projects/${encodeURIComponent(number())}`;

function guarded(f) {
  return (e) => {
    if (e && e.preventDefault) e.preventDefault();
    return f(e).catch((error) => showError(error.message));
  };
}

/* A datetime-local value (China Standard Time) as RFC 3339. */
function cst(value, what) {
  if (!value) throw new Error(`请填写${what}`);
  return `${value.length === 16 ? `${value}:00` : value}+08:00`;
}

function required(id, what) {
  const value = $(id).value.trim();
  if (!value) throw new Error(`请填写${what}`);
  return value;
}

/* Comma-separated lines (full-width commas too) with exactly `fields` fields each. */
function lines(id, fields, what) {
  const rows = $(id).value.split('\n').map((l) => l.trim()).filter(Boolean);
  if (!rows.length) throw new Error(`请填写${what}`);
  return rows.map((line, i) => {
    const parts = line.split(/[,，]/).map((p) => p.trim());
    if (parts.length !== fields || parts.some((p) => !p)) {
      throw new Error(`${what}第 ${i + 1} 行应有 ${fields} 项，以逗号分隔：${line}`);
    }
    return parts;
  });
}

function parseNumber(text, what, line) {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${what}第 ${line} 行的数值无效：${text}`);
  return value;
}

async function loadBidders() {
  if (!number()) return;
  const bidders = await api('GET', `${projectPath()}/bidders`);
  $('bidders-table').tBodies[0].replaceChildren(...bidders.map((b) => {
    const tr = document.createElement('tr');
    for (const text of [b.id, b.name, b.phone || '（无，短信无法通知）']) {
      const td = document.createElement('td');
      td.textContent = String(text);
      tr.append(td);
    }
    return tr;
  }));
}

async function addBidder() {
  const phone = $('bidder-phone').value.trim();
  await api('POST', `${projectPath()}/bidders`, { name: required('bidder-name', '投标人名称'), phone: phone || null });
  $('bidder-form').reset();
  showNotice('已登记投标人');
  await loadBidders();
}

async function sendNotice() {
  const kind = $('notice-kind').value;
  const needsDeadline = kind === 'clarification' || kind === 'second_quotation';
  const deadline = needsDeadline ? cst($('notice-deadline').value, '答复截止时间') : null;
  const result = await api('POST', `${projectPath()}/sms-notices`, { kind, deadline });
  const missing = result.without_phone.length ? `；无手机号未通知：${result.without_phone.join('、')}` : '';
  $('notice-result').textContent = `已排队 ${result.message_ids.length} 条短信（通知编号 ${result.notice_id}）${missing}`;
  showNotice('短信通知已排队发送，结果见“平台对接”页');
}

function record() {
  const kind = $('record-kind').value;
  if (kind === 'expert_scores') {
    return {
      kind,
      scores: lines('scores-lines', 5, '专家评分').map(([expert_name, id_number, bidder_name, bidder_code, score], i) => ({
        expert_name, id_number, bidder_name, bidder_code, score: parseNumber(score, '专家评分', i + 1),
      })),
    };
  }
  if (kind === 'candidate_publicity') {
    return {
      kind,
      publicity_start: cst($('publicity-start').value, '公示开始时间'),
      publicity_end: cst($('publicity-end').value, '公示结束时间'),
      candidates: lines('candidate-lines', 4, '中标候选人').map(([rank, bidder_name, bidder_code, bid_price], i) => ({
        rank: parseNumber(rank, '中标候选人', i + 1), bidder_name, bidder_code, bid_price,
      })),
    };
  }
  if (kind === 'result_announcement') {
    return {
      kind,
      winner_name: required('winner-name', '中标人'),
      winner_code: required('winner-code', '中标人统一社会信用代码'),
      win_price: required('win-price', '中标价'),
      notice_time: cst($('notice-time').value, '公告时间'),
    };
  }
  return {
    kind,
    expert_name: required('credit-name', '专家姓名'),
    id_number: required('credit-id', '身份证号'),
    credit_type: $('credit-type').value,
    content: required('credit-content', '信用记录内容'),
    record_time: cst($('credit-time').value, '记录时间'),
  };
}

async function sendRecord() {
  const body = record();
  await api('POST', `${projectPath()}/evaluation-records`, body);
  showNotice(`已记录并排队报送：${$('record-kind').selectedOptions[0].textContent}（发送情况见“平台对接”页）`);
}

function showKind() {
  for (const box of document.querySelectorAll('.record-fields')) box.hidden = box.dataset.kind !== $('record-kind').value;
}

async function start() {
  $('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });
  const session = await api('GET', '/api/session');
  csrf = session.csrf_token || '';
  const projects = await api('GET', '/api/projects');
  $('project').replaceChildren(...projects.map((p) => new Option(`${p.number} ${p.name}`, p.number)));
  const wanted = new URLSearchParams(location.search).get('project');
  if (wanted) $('project').value = wanted;
  $('project').addEventListener('change', guarded(loadBidders));
  $('bidder-form').addEventListener('submit', guarded(addBidder));
  $('notice-form').addEventListener('submit', guarded(sendNotice));
  $('record-form').addEventListener('submit', guarded(sendRecord));
  $('record-kind').addEventListener('change', showKind);
  showKind();
  await loadBidders();
}

start().catch((e) => showError(e.message));
