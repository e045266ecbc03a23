// Helpers of the separate pages (gates, integrations, video), loaded before the page's own
// script: element lookup, the error and notice banners, and the API call with the session's
// CSRF token. (app.js has its own: loading it would start the single-page app.)
'use strict';

const $ = (id) => document.getElementById(id);
// The session's CSRF token, set by the page from GET /api/session.
let csrf = '';

function showError(message) {
  $('error-text').textContent = message;
  $('error-banner').hidden = false;
}

function showNotice(message) {
  $('notice-text').textContent = message;
  $('notice-banner').hidden = !message;
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && csrf) options.headers['X-CSRF-Token'] = csrf;
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (response.status === 401) throw new Error('请先在首页登录');
  if (!response.ok) throw new Error((data && data.message) || `请求失败（HTTP ${response.status}）`);
  return data;
}
