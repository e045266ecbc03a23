// 见证 · 清标页面 — uploads the tender and bids to the project, runs clearing on the daemon and
// shows the findings, charts and stored reports.
//
// Plain JavaScript like app.js. Server data reaches the DOM only as text (textContent /
// attributes through `el`), never through innerHTML. Amounts stay decimal strings; they are
// turned into numbers only to size chart bars.
'use strict';

const KIND_LABELS = {
  missing_item: '漏项', extra_item: '增项', changed_code: '项目编码改动', changed_name: '项目名称改动',
  changed_unit: '计量单位改动', changed_quantity: '工程量改动', provisional_sum_changed: '暂列金额/暂估价改动',
  fee_rate_changed: '不可竞争费费率改动', above_control_price: '超最高投标限价',
  line_total_mismatch: '合价计算错误', unit_price_breakdown_mismatch: '综合单价组成不符',
  sum_mismatch: '汇总错误', fee_amount_mismatch: '费用金额计算错误', zero_or_negative_price: '零价或负价',
  unbalanced_high: '不平衡报价（偏高）', unbalanced_low: '不平衡报价（偏低）',
  abnormally_low: '投标报价异常偏低', shared_errors: '雷同错误/雷同报价',
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style') node.style.cssText = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'disabled' || key === 'hidden') node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function showError(message) {
  $('error-text').textContent = message;
  $('error-banner').hidden = false;
}

function showNotice(message) {
  $('notice-text').textContent = message;
  $('notice-banner').hidden = !message;
}

async function api(method, path, body, contentType) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = contentType ? body : JSON.stringify(body);
    options.headers['Content-Type'] = contentType || 'application/json';
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) throw new Error((data && data.message) || `请求失败（HTTP ${response.status}）`);
  return data;
}

function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

function baseName(file) {
  return file.name.replace(/\.[^.]+$/, '');
}

/* ------------------------------------------------------------ form */

async function loadProjects() {
  const projects = await api('GET', '/api/projects');
  const select = $('project-select');
  select.replaceChildren(...projects.map((p) => el('option', { value: p.number }, `${p.number} ${p.name}`)));
  if (!projects.length) select.append(el('option', { value: '' }, '（请先在“项目”页登记项目）'));
  const wanted = new URLSearchParams(location.search).get('project');
  if (wanted) select.value = wanted;
}

function renderBidNames() {
  const files = Array.from($('bids-input').files);
  $('bid-names').replaceChildren(...files.map((file, i) => el('div', { class: 'bid-row' },
    el('input', { type: 'text', value: baseName(file), 'data-bid-index': i, 'aria-label': `投标人名称 ${i + 1}` }),
    el('span', { class: 'mono small' }, file.name),
    el('span', { class: 'muted small' }, `${(file.size / 1e6).toFixed(1)} MB`))));
}

function threshold(text, unit) {
  return unit === 'yuan' ? { yuan: text.trim() } : { percent: text.trim() };
}

function config() {
  const base = $('base-select').value;
  let priceBase = base;
  if (base === 'average') {
    const drop = Number($('drop-input').value) || 0;
    priceBase = { average: { drop_high: drop, drop_low: drop } };
  } else if (base === 'bidder') {
    priceBase = { bidder: $('base-bidder-input').value.trim() };
  }
  const unit = $('threshold-unit').value;
  return {
    base: priceBase,
    unbalanced_high: threshold($('high-input').value, unit),
    unbalanced_low: threshold($('low-input').value, unit),
    abnormally_low_control_percent: $('low-control-input').value.trim(),
    abnormally_low_mean_percent: $('low-mean-input').value.trim(),
  };
}

async function upload(number, folder, file, done, total) {
  const relPath = `${folder}/${file.name}`;
  $('run-status').textContent = `上传 ${file.name}（${done + 1}/${total}）…`;
  await api('PUT', `/api/projects/${encodeURIComponent(number)}/files/${encodePath(relPath)}`,
    file, 'application/octet-stream');
  $('run-progress').value = Math.round(((done + 1) / (total + 1)) * 100);
  return relPath;
}

async function run(event) {
  event.preventDefault();
  $('error-banner').hidden = true;
  const number = $('project-select').value;
  const tender = $('tender-input').files[0];
  const bids = Array.from($('bids-input').files);
  if (!number || !tender || !bids.length) {
    showError('请选择项目、招标清单和至少一份投标报价');
    return;
  }
  const names = Array.from(document.querySelectorAll('[data-bid-index]')).map((i) => i.value.trim());
  if (new Set(names).size !== names.length || names.some((n) => !n)) {
    showError('投标人名称不能为空且不能重复');
    return;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const folder = `清标/${stamp}`;
  $('run-button').disabled = true;
  $('run-progress').hidden = false;
  $('run-progress').value = 0;
  try {
    const total = bids.length + 1;
    const tenderPath = await upload(number, `${folder}/招标`, tender, 0, total);
    const bidFiles = [];
    for (let i = 0; i < bids.length; i++) {
      bidFiles.push({ bidder: names[i], path: await upload(number, `${folder}/投标`, bids[i], i + 1, total) });
    }
    $('run-status').textContent = '清标计算中…';
    const started = performance.now();
    const answer = await api('POST', `/api/projects/${encodeURIComponent(number)}/clearing`,
      { tender: tenderPath, bids: bidFiles, config: config() });
    $('run-progress').value = 100;
    $('run-status').textContent = `完成：${answer.result.findings.length} 处问题，用时 ${((performance.now() - started) / 1000).toFixed(1)} 秒`;
    render(number, answer);
  } catch (error) {
    showError(error.message);
    $('run-status').textContent = '';
  } finally {
    $('run-button').disabled = false;
  }
}

/* ------------------------------------------------------------ results */

function amount(text) {
  const value = parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}

function table(node, columns, rows) {
  node.replaceChildren(
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c)))),
    el('tbody', {}, rows));
}

function renderPrices(result) {
  const prices = result.analyses.price_comparison.slice().sort((a, b) => a.rank - b.rank);
  const max = Math.max(1, ...prices.map((p) => amount(p.corrected_total)));
  $('price-chart').replaceChildren(...prices.map((p) => el('div', { class: 'bar-row' },
    el('span', {}, p.bidder),
    el('div', { class: 'bar-track' },
      el('div', { class: p.valid ? 'bar' : 'bar invalid', style: `width:${(amount(p.corrected_total) / max) * 100}%` })),
    el('span', { class: 'num mono' }, p.corrected_total))));
  table($('price-table'), ['排名', '投标人', '投标报价', '修正后报价', '占控制价%', '有效'],
    prices.map((p) => el('tr', { dataset: { bidder: p.bidder } },
      el('td', {}, p.rank), el('td', {}, p.bidder), el('td', { class: 'num mono' }, p.stated_total),
      el('td', { class: 'num mono' }, p.corrected_total), el('td', { class: 'num' }, p.percent_of_control),
      el('td', {}, p.valid ? '是' : '否（超控制价）'))));
}

function renderComposition(result) {
  const rows = result.analyses.cost_composition.filter((c) => c.unit === '全部');
  const parts = [['items', '分部分项'], ['measures', '措施项目'], ['others', '其他项目'],
    ['regulatory_fees', '规费'], ['tax', '税金']];
  const cls = { items: 'seg-items', measures: 'seg-measures', others: 'seg-others', regulatory_fees: 'seg-fees', tax: 'seg-tax' };
  const totals = rows.map((r) => parts.reduce((s, [k]) => s + amount(r[k]), 0));
  const max = Math.max(1, ...totals);
  $('composition-chart').replaceChildren(
    el('div', { class: 'legend small' }, parts.map(([k, label]) => el('span', {}, el('i', { class: cls[k] }), label))),
    ...rows.map((r, i) => el('div', { class: 'bar-row' },
      el('span', {}, r.bidder),
      el('div', { class: 'bar-track' }, parts.map(([k, label]) => el('div', {
        class: `bar ${cls[k]}`, title: `${label} ${r[k]}`, style: `width:${(amount(r[k]) / max) * 100}%`,
      }))),
      el('span', { class: 'num mono' }, totals[i].toFixed(2)))));
}

function drill(result, finding) {
  const bidders = result.analyses.price_comparison.map((p) => p.bidder);
  const item = result.analyses.items.find((i) => i.code === finding.item_code && (!finding.unit || i.unit === finding.unit));
  const details = [
    ['类别', `${KIND_LABELS[finding.kind] || finding.kind}（${finding.kind}）`], ['投标人', finding.bidder],
    ['单位工程', finding.unit], ['项目', `${finding.item_code} ${finding.item_name}`], ['应为', finding.expected],
    ['实为', finding.actual], ['依据', finding.rule], ['位置', finding.location],
  ];
  if (finding.correction) {
    const c = finding.correction;
    details.push(['修正', `${c.field}：${c.from} → ${c.to}（总价影响 ${c.delta}；修正后投标总价 ${c.corrected_bid_total}）${c.note}`]);
  }
  const rows = details.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', { colspan: 2 }, v || '—')));
  if (item) {
    rows.push(el('tr', {}, el('th', {}, '工程量'), el('td', { colspan: 2 }, `${item.quantity} ${item.item_unit}`)));
    rows.push(el('tr', {}, el('th', {}, '控制价综合单价'), el('td', { colspan: 2 }, item.control_price || '—')));
    rows.push(el('tr', {}, el('th', {}, '基准'), el('td', { colspan: 2 }, `${item.base || '—'}（${result.analyses.base}）`)));
    bidders.forEach((b, i) => rows.push(el('tr', { style: b === finding.bidder ? 'background:var(--amber-100);font-weight:600' : null },
      el('th', {}, b), el('td', { class: 'num mono' }, item.prices[i] || '未报'), el('td', {}, ''))));
  }
  table($('drill-table'), ['项目', '内容', ''], rows);
  $('drill').hidden = false;
  $('drill').scrollIntoView({ behavior: 'smooth' });
}

function renderFindings(result) {
  const byBidder = new Map();
  for (const f of result.findings) {
    if (!byBidder.has(f.bidder)) byBidder.set(f.bidder, new Map());
    const kinds = byBidder.get(f.bidder);
    if (!kinds.has(f.kind)) kinds.set(f.kind, []);
    kinds.get(f.kind).push(f);
  }
  if (!byBidder.size) {
    $('findings').replaceChildren(el('p', { class: 'muted' }, '未发现问题。'));
    return;
  }
  $('findings').replaceChildren(...Array.from(byBidder, ([bidder, kinds]) => el('div', { dataset: { bidder } },
    el('h3', {}, `${bidder}（${Array.from(kinds.values()).reduce((s, l) => s + l.length, 0)} 处）`),
    Array.from(kinds, ([kind, list]) => el('details', { class: 'finding-group', dataset: { kind } },
      el('summary', {}, `${KIND_LABELS[kind] || kind}：${list.length} 处`),
      el('p', { class: 'small muted' }, list[0].rule),
      el('div', { class: 'table-wrap' }, el('table', { class: 'data-table' },
        el('thead', {}, el('tr', {}, ['单位工程', '项目编码', '项目名称', '应为', '实为', '位置'].map((c) => el('th', {}, c)))),
        el('tbody', {}, list.slice(0, 500).map((f) => el('tr', {
          class: 'finding-row', tabindex: 0, onclick: () => drill(result, f),
          onkeydown: (e) => { if (e.key === 'Enter') drill(result, f); },
        }, el('td', {}, f.unit), el('td', { class: 'mono' }, f.item_code), el('td', {}, f.item_name),
        el('td', {}, f.expected), el('td', {}, f.actual), el('td', { class: 'small' }, f.location)))))),
      list.length > 500 ? el('p', { class: 'hint' }, `仅显示前 500 处，完整清单见清标报告 .xlsx。`) : null)))));
}

function render(number, answer) {
  $('results').hidden = false;
  $('drill').hidden = true;
  renderPrices(answer.result);
  renderComposition(answer.result);
  renderFindings(answer.result);
  $('report-links').replaceChildren(...answer.reports.map((path) => {
    const file = path.split('/').pop();
    return el('li', {}, el('a', {
      href: `/api/projects/${encodeURIComponent(number)}/clearing/reports/${encodeURIComponent(file)}`,
      target: '_blank', rel: 'noopener',
    }, path), file.endsWith('.html') ? '（可打印 / 另存为 PDF）' : '');
  }));
  showNotice(`清标报告已保存到项目 ${number} 的「清标报告」文件夹，将随项目一起归档。`);
}

$('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });
$('bids-input').addEventListener('change', renderBidNames);
$('clearing-form').addEventListener('submit', run);
loadProjects().catch((error) => showError(error.message));
