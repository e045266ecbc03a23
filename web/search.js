'use strict';
/* The search page: query, filters and facets live in the address (?q=…&year=…), so a search can
   be bookmarked and the back button works. */

const $ = (id) => document.getElementById(id);

const KIND_ZH = { project: '项目', document: '文档', video: '录像', audio: '录音', other: '其他文件', disc: '光盘', disk_copy: '硬盘副本', expert: '专家' };
const CATEGORY_ZH = { construction: '工程建设', procurement: '政府采购', land: '土地使用权', mining: '矿业权', property: '国有产权' };
const FACETS = [
  ['year', '年份', (v) => `${v} 年`],
  ['category', '类别', (v) => CATEGORY_ZH[v] || v],
  ['kind', '类型', (v) => KIND_ZH[v] || v],
  ['location', '存放位置', (v) => v],
];
const FILTERS = ['year', 'category', 'kind', 'location', 'from', 'to'];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  $('error-text').textContent = message;
  $('error-banner').hidden = !message;
}

/* Snippet parts as text with the matches in <mark>: built as nodes, never as HTML. */
function marked(parts) {
  return (parts || []).map((p) => (p.hit ? el('mark', null, p.text) : document.createTextNode(p.text)));
}

function currentParams() {
  return new URLSearchParams(location.search);
}

function go(params) {
  history.pushState(null, '', `/search.html?${params.toString()}`);
  run();
}

function renderFacets(results, params) {
  const box = $('facets');
  box.replaceChildren();
  for (const [name, label, show] of FACETS) {
    const counts = results.facets[name] || [];
    if (!counts.length) continue;
    const group = el('div', { class: 'facet-group' }, el('h3', null, label));
    for (const { value, count } of counts) {
      const active = params.get(name) === value;
      const next = new URLSearchParams(params);
      if (active) next.delete(name); else next.set(name, value);
      next.delete('offset');
      const link = el('a', { href: `/search.html?${next}`, class: active ? 'active' : null, 'aria-pressed': String(active) },
        el('span', null, show(value)), el('span', { class: 'muted' }, count));
      link.addEventListener('click', (event) => { event.preventDefault(); go(next); });
      group.append(link);
    }
    box.append(group);
  }
  if (!box.children.length) box.append(el('p', { class: 'muted small' }, '没有可用的筛选项'));
}

function renderHit(hit) {
  const meta = [
    el('a', { href: hit.project_link }, hit.project_number), ' ',
    hit.project_name, ' · ', CATEGORY_ZH[hit.category] || hit.category, ' · 开标 ', hit.date,
  ];
  if (hit.location) meta.push(' · 存放位置：', el('a', { href: hit.item_link }, hit.location));
  return el('div', { class: 'hit' },
    el('div', { class: 'hit-title' },
      el('span', { class: 'badge' }, KIND_ZH[hit.kind] || hit.kind), ' ',
      el('a', { href: hit.item_link }, marked(hit.title))),
    el('div', { class: 'hit-meta small muted' }, meta),
    hit.snippet && hit.snippet.length ? el('div', { class: 'hit-snippet small' }, marked(hit.snippet)) : null);
}

/* Every search bumps this: answers to an older search are dropped. */
let generation = 0;

async function getJson(params) {
  const response = await fetch(`/api/search?${params}`);
  if (response.status === 401) { location.href = '/#/login'; return null; }
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || `搜索失败（HTTP ${response.status}）`);
  return data;
}

/* Two requests: the hits first (facets=false: the server need not count every hit per year,
   category, kind and location), then the facet counts alone (limit=0), which fill in when they
   arrive. */
async function run() {
  const current = ++generation;
  const params = currentParams();
  $('q').value = params.get('q') || '';
  $('from').value = params.get('from') || '';
  $('to').value = params.get('to') || '';
  const hasFilter = FILTERS.some((f) => params.get(f));
  if (!params.get('q') && !hasFilter) return;
  $('results').replaceChildren(el('p', { class: 'loading muted' }, '正在搜索…'));
  $('facets').replaceChildren(el('p', { class: 'muted small' }, '正在统计…'));
  showError('');
  try {
    const page = new URLSearchParams(params);
    page.set('facets', 'false');
    const data = await getJson(page);
    if (!data || current !== generation) return;
    $('summary').textContent = `结果：共 ${data.total} 条（${data.took_ms.toFixed(1)} 毫秒）`;
    $('results').replaceChildren(...(data.hits.length
      ? data.hits.map(renderHit)
      : [el('p', { class: 'muted' }, '没有找到匹配的项目、文件或光盘。')]));
    const counts = new URLSearchParams(params);
    counts.set('limit', '0');
    counts.delete('offset');
    counts.set('facets', 'true');
    const facets = await getJson(counts);
    if (!facets || current !== generation) return;
    renderFacets(facets, params);
  } catch (error) {
    if (current !== generation) return;
    showError(error.message);
    $('results').replaceChildren();
    $('facets').replaceChildren();
  }
}

$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const params = currentParams();
  params.set('q', $('q').value.trim());
  for (const name of ['from', 'to']) {
    if ($(name).value) params.set(name, $(name).value); else params.delete(name);
  }
  go(params);
});
$('clear-filters').addEventListener('click', () => {
  const params = new URLSearchParams();
  if ($('q').value.trim()) params.set('q', $('q').value.trim());
  go(params);
});
$('error-close').addEventListener('click', () => showError(''));
window.addEventListener('popstate', run);
run();
