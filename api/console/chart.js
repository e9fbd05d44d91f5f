// Hand-drawn SVG line charts for an endpoint's stats series
// ([{start, attempts, succeeded, failed, p50?, p95?, p99?}], oldest first).
import { h } from './dom.js';

const W = 600;
const H = 200;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

export function countChart(series, window) {
  return lineChart('Attempts per bucket', series, window, [
    { key: 'attempts', label: 'attempts', cls: 'line-attempts' },
    { key: 'succeeded', label: 'succeeded', cls: 'line-ok' },
    { key: 'failed', label: 'failed', cls: 'line-failed' },
  ], (v) => String(v));
}

export function latencyChart(series, window) {
  return lineChart('Latency (ms)', series, window, [
    { key: 'p50', label: 'p50', cls: 'line-p50' },
    { key: 'p95', label: 'p95', cls: 'line-p95' },
    { key: 'p99', label: 'p99', cls: 'line-p99' },
  ], (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${v}`));
}

function lineChart(title, series, window, lines, fmt) {
  const n = series.length;
  let max = 0;
  for (const point of series) {
    for (const line of lines) if (typeof point[line.key] === 'number') max = Math.max(max, point[line.key]);
  }
  max = niceMax(max);
  const x = (i) => PAD.left + (n <= 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (n - 1));
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);

  const grid = [0, max / 2, max].map((v) => h('g', { class: 'tick' },
    h('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
    h('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(Number.isInteger(v) ? v : Number(v.toFixed(1))))));
  const labels = n === 0 ? [] : [0, Math.floor((n - 1) / 2), n - 1].map((i, k) => h('text', {
    class: 'xlabel', x: x(i), y: H - 8, 'text-anchor': ['start', 'middle', 'end'][k],
  }, timeLabel(series[i].start, window)));
  // A missing value (no attempts in the bucket) breaks the line; a value
  // with no neighbour gets a dot, as a line of one point is invisible.
  const has = (i, key) => i >= 0 && i < n && typeof series[i][key] === 'number';
  const paths = lines.map((line) => {
    let d = '';
    const dots = [];
    series.forEach((point, i) => {
      if (!has(i, line.key)) return;
      const px = x(i).toFixed(1);
      const py = y(point[line.key]).toFixed(1);
      d += `${has(i - 1, line.key) ? 'L' : 'M'}${px},${py}`;
      if (!has(i - 1, line.key) && !has(i + 1, line.key)) {
        dots.push(h('circle', { class: `dot ${line.cls}`, cx: px, cy: py, r: 3 }));
      }
    });
    return h('g', {}, d ? h('path', { class: `line ${line.cls}`, d }) : null, dots);
  });
  const total = (key) => series.reduce((sum, p) => sum + (p[key] || 0), 0);
  const summary = `${title}, ${n} buckets. ` + lines.map((l) => (
    l.key.startsWith('p') ? `${l.label} up to ${fmt(Math.max(0, ...series.map((p) => p[l.key] || 0)))}` : `${l.label} ${total(l.key)}`
  )).join(', ');

  return h('figure', { class: 'chart' },
    h('figcaption', {}, title),
    h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary },
      h('title', {}, summary), grid, labels, paths),
    h('ul', { class: 'legend' }, lines.map((l) => h('li', {}, h('span', { class: `swatch ${l.cls}` }), l.label))),
    n === 0 ? h('p', { class: 'empty' }, 'No data in this window.') : null);
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(iso, window) {
  const d = new Date(iso);
  if (window === '7d') return d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
