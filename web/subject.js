// The market-subject library (主体库) section of the integrations page: legal-person queries
// (basic or comprehensive, with where the answer came from and how old it is), the subject's
// QR code, resolving a scanned QR code, and the subject records recorded for pushing.
// Loaded after page.js and integrations.js, whose helpers ($, api, showError, showNotice, node,
// time, guarded) it uses. Server text reaches the DOM only through textContent.
'use strict';

const SUBJECT_BASE = '/api/integrations/market_subject_library';

const SUBJECT_KINDS = {
  'legal-person': '法人信息', 'natural-person': '自然人信息', performance: '业绩', reward: '奖励',
  violation: '违法违规', blacklist: '黑名单', 'blacklist-revocation': '黑名单撤销',
  'contract-performance': '合同履约', 'bid-file-upload': '投标文件上传记录',
};

// The library's exchanges, named in the target card's message tables (integrations.js draws
// those after its first API answer, so after this script has run).
Object.assign(EXCHANGES, SUBJECT_KINDS);

// Stored times carry nanoseconds; people read seconds.
function shortTime(text) {
  return time(text).replace(/\.\d+$/, '');
}

function age(seconds) {
  if (seconds < 60) return `${seconds} 秒`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} 分钟`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} 小时`;
  return `${Math.floor(seconds / 86400)} 天`;
}

// A two-column table of label → value; empty values show as —.
function fieldTable(rows) {
  const table = node('table', null, 'table');
  const body = node('tbody');
  for (const [label, value] of rows) {
    const row = node('tr');
    row.append(node('th', label), node('td', value == null || value === '' ? '—' : value));
    body.append(row);
  }
  table.append(body);
  return table;
}

// A list as a table with the given columns ([heading, value-of-item]).
function listTable(title, items, columns) {
  const box = node('div');
  box.append(node('h3', `${title}（${items.length}）`));
  if (!items.length) {
    box.append(node('p', '无', 'muted'));
    return box;
  }
  const table = node('table', null, 'table');
  const head = node('tr');
  for (const [h] of columns) head.append(node('th', h));
  table.append(head);
  for (const item of items) {
    const row = node('tr');
    for (const [, value] of columns) {
      const v = value(item);
      row.append(node('td', v == null || v === '' ? '—' : v));
    }
    table.append(row);
  }
  box.append(table);
  return box;
}

function sourceLine(a) {
  if (a.source === 'library') return node('p', `来源：主体库（刚刚查询，${shortTime(a.fetched_at)}）`, 'muted');
  if (a.source === 'cache') {
    const extra = a.stale_reason ? `；刷新失败：${a.stale_reason}` : '';
    return node('p', `来源：缓存（${age(a.age_seconds)}前查询${extra}）`, 'muted');
  }
  // Past its time to live, served only because the library could not be reached.
  return node('p', `过期缓存：主体库暂时无法访问（${a.stale_reason || '未知原因'}），以下为 ${age(a.age_seconds)}前的查询结果（${shortTime(a.fetched_at)}）`, 'fault-ours');
}

function showAnswer(a) {
  const b = a.basic;
  const out = [sourceLine(a), fieldTable([
    ['单位名称', b.name], ['统一社会信用代码', b.credit_code], ['法定代表人', b.legal_representative],
    ['单位类型', b.subject_type], ['经营状态', b.operating_status], ['成立日期', b.established_on],
    ['注册资本（万元）', b.registered_capital], ['注册地址', b.address],
    ['登记机关', b.registration_authority], ['经营范围', b.business_scope],
  ])];
  const r = a.records;
  if (r) {
    out.push(node('p', r.blacklisted ? '当前在黑名单中' : '当前不在黑名单中', r.blacklisted ? 'fault-ours' : 'muted'));
    out.push(listTable('资质', r.qualifications, [['资质名称', (q) => q.name], ['等级', (q) => q.level],
      ['证书编号', (q) => q.cert_no], ['有效期至', (q) => q.valid_until]]));
    out.push(listTable('业绩', r.performances, [['项目名称', (p) => p.project_name], ['建设单位', (p) => p.owner],
      ['合同金额（元）', (p) => p.contract_amount], ['竣工日期', (p) => p.completed_on]]));
    out.push(listTable('奖励', r.rewards, [['奖项', (x) => x.name], ['级别', (x) => x.level], ['授予日期', (x) => x.awarded_on]]));
    out.push(listTable('违法违规', r.violations, [['行为', (v) => v.content], ['处理机关', (v) => v.authority],
      ['处理日期', (v) => v.decided_on]]));
    out.push(listTable('黑名单记录', r.blacklist, [['列入事由', (x) => x.reason], ['列入日期', (x) => x.listed_on],
      ['期满日期', (x) => x.ends_on], ['状态', (x) => (x.revoked ? '已撤销' : '有效')]]));
  }
  $('subject-result').replaceChildren(...out);
}

async function querySubject(e) {
  e.preventDefault();
  const code = $('subject-code').value.trim().toUpperCase();
  const detail = $('subject-detail').value;
  const refresh = $('subject-refresh').checked;
  $('subject-result').replaceChildren(node('p', '查询中…', 'muted'));
  try {
    const a = await api('GET', `${SUBJECT_BASE}/legal-persons/${encodeURIComponent(code)}?detail=${detail}&refresh=${refresh}`);
    showAnswer(a);
  } catch (error) {
    $('subject-result').replaceChildren(node('p', error.message, 'fault-ours'));
  }
}

async function fetchQr() {
  const code = $('subject-code').value.trim().toUpperCase();
  if (!code) throw new Error('请先填写统一社会信用代码');
  const qr = await api('GET', `${SUBJECT_BASE}/legal-persons/${encodeURIComponent(code)}/qr`);
  const img = node('img');
  img.src = `data:image/png;base64,${qr.png_base64}`;
  img.alt = `${qr.credit_code} 的主体二维码`;
  img.width = 200;
  $('subject-result').replaceChildren(node('h3', '主体二维码'), img,
    fieldTable([['统一社会信用代码', qr.credit_code], ['二维码内容', qr.content], ['有效期至', time(qr.valid_until)]]));
}

async function scanQr(e) {
  e.preventDefault();
  const s = await api('POST', `${SUBJECT_BASE}/qr-scans`, { content: $('scan-content').value });
  const blacklisted = s.blacklisted == null ? null : (s.blacklisted ? '在列' : '不在列');
  $('scan-result').replaceChildren(fieldTable([
    ['主体类型', s.subject_kind === 'legal_person' ? '法人' : '自然人'], ['名称 / 姓名', s.name],
    [s.subject_kind === 'legal_person' ? '统一社会信用代码' : '身份证号（已脱敏）', s.code],
    ['经营状态', s.operating_status], ['黑名单', blacklisted], ['二维码有效期至', time(s.valid_until)],
  ]));
}

async function loadSubjectRecords() {
  const list = await api('GET', `${SUBJECT_BASE}/records?limit=50`);
  $('subject-records').replaceChildren(listTable('最近登记的主体记录', list, [
    ['编号', (r) => r.id], ['类型', (r) => SUBJECT_KINDS[r.kind] || r.kind], ['主体', (r) => `${r.subject_name}（${r.subject_code}）`],
    ['项目', (r) => r.project_number], ['报送状态', (r) => STATES[r.state] || r.state],
    ['撤销', (r) => (r.revoked_by ? `已由记录 ${r.revoked_by} 撤销` : '')], ['登记人', (r) => r.created_by],
    ['登记时间', (r) => shortTime(r.created_at)],
  ]));
}

$('subject-form').addEventListener('submit', guarded(querySubject));
$('subject-qr').addEventListener('click', guarded(fetchQr));
$('scan-form').addEventListener('submit', guarded(scanQr));
loadSubjectRecords().catch((error) => showError(error.message));
