'use strict';
/* The one site header and alert banners. Every page has
     <header class="site-header" data-page="gates"></header>
     <div class="container">
       <script src="/nav.js"></script>
   and this draws the brand and the navigation into the header, and the error banner
   (#error-banner, role=alert, #error-text, #error-close) and the notice banner (#notice-banner,
   #notice-text) where the script stands, so that the pages cannot drift apart. Links for some roles only
   (data-roles) stay hidden until the page learns who is logged in: the single-page app
   (app.js) shows them from its session; other pages ask /api/session once. */
(function drawBanners() {
  const here = document.currentScript;
  if (!here) return;
  const banner = (id, className, role, textId) => {
    const box = document.createElement('div');
    box.id = id;
    box.className = `banner ${className}`;
    box.setAttribute('role', role);
    box.hidden = true;
    const text = document.createElement('span');
    text.className = 'banner-text';
    text.id = textId;
    box.append(text);
    return box;
  };
  const error = banner('error-banner', 'banner-error', 'alert', 'error-text');
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'banner-close';
  close.id = 'error-close';
  close.setAttribute('aria-label', '关闭');
  close.textContent = '×';
  error.append(close);
  here.before(error, banner('notice-banner', 'banner-notice', 'status', 'notice-text'));
}());

(function drawSiteHeader() {
  const LINKS = [
    ['projects', '/#/', '项目'],
    ['search', '/search.html', '搜索'],
    ['discs', '/#/discs', '光盘与副本'],
    ['drives', '/#/drives', '刻录机'],
    ['schedules', '/#/schedules', '定时与批量'],
    ['inspections', '/#/inspections', '复检'],
    ['video', '/video.html', '录像回放'],
    ['clearing', '/clearing.html', '清标'],
    ['gates', '/gates.html', '门禁'],
    ['results', '/results.html', '评标结果'],
    ['integrations', '/integrations.html', '平台对接'],
    ['audit', '/#/audit', '审计日志', 'admin auditor'],
    ['admin', '/#/admin', '用户与令牌', 'admin'],
  ];
  const header = document.querySelector('header.site-header[data-page]');
  if (!header) return;
  const page = header.dataset.page;
  const inner = document.createElement('div');
  inner.className = 'site-header-inner';
  const brand = document.createElement('a');
  brand.className = 'brand';
  brand.href = '/#/';
  const mark = document.createElement('span');
  mark.className = 'brand-mark';
  mark.setAttribute('aria-hidden', 'true');
  mark.textContent = '证';
  const text = document.createElement('span');
  text.className = 'brand-text';
  text.textContent = '见证 · 评标档案归档系统';
  brand.append(mark, text);
  const nav = document.createElement('nav');
  nav.className = 'site-nav';
  nav.setAttribute('aria-label', '主导航');
  for (const [name, href, label, roles] of LINKS) {
    const link = document.createElement('a');
    link.href = href;
    link.dataset.nav = name;
    link.textContent = label;
    if (roles) {
      link.dataset.roles = roles;
      link.hidden = true;
    }
    if (name === page) link.setAttribute('aria-current', 'page');
    nav.append(link);
  }
  inner.append(brand, nav);
  // The single-page app keeps its user box (whoami, logout) in the header's slot.
  const slot = header.querySelector('.site-user');
  if (slot) inner.append(slot);
  header.replaceChildren(inner);
  if (header.dataset.session === 'app') return;
  fetch('/api/session')
    .then((response) => (response.ok ? response.json() : null))
    .then((info) => {
      for (const link of nav.querySelectorAll('[data-roles]')) {
        link.hidden = !info || !link.dataset.roles.split(' ').includes(info.role);
      }
    })
    .catch(() => {});
}());
