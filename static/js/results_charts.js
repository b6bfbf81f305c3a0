// Equity, drawdown and comparison charts of the results pages (uPlot, vendored).
// Data comes from json_script blocks the server rendered: no request of its own.
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#dc2626", "#15803d", "#9333ea"];

  function read(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function width(el) {
    return Math.max(320, el.clientWidth || el.parentElement.clientWidth || 800);
  }

  function plot(el, opts, data) {
    opts.width = width(el);
    var chart = new uPlot(opts, data, el);
    window.addEventListener("resize", function () {
      chart.setSize({ width: width(el), height: opts.height });
    });
    el.dataset.ready = "true";
    return chart;
  }

  var curve = read("run-curve");
  if (curve) {
    var sync = uPlot.sync("run");
    var cursor = { sync: { key: sync.key } };
    plot(document.getElementById("equity-chart"), {
      height: 300, cursor: cursor,
      series: [{}, { label: "Equity", stroke: COLOURS[0], width: 1.5, fill: "rgba(37,99,235,.08)" }],
      axes: [{}, { size: 70 }],
    }, [curve.time, curve.equity]);
    plot(document.getElementById("drawdown-chart"), {
      height: 160, cursor: cursor,
      series: [{}, { label: "Drawdown %", stroke: "#b91c1c", width: 1, fill: "rgba(185,28,28,.15)" }],
      axes: [{}, { size: 70 }],
    }, [curve.time, curve.drawdown_pct]);
  }

  var curves = read("compare-curves");
  if (curves && curves.length) {
    // One shared time axis: the union of every curve's times; gaps are spanned.
    var times = [];
    var seen = {};
    curves.forEach(function (c) {
      c.curve.time.forEach(function (t) { if (!seen[t]) { seen[t] = true; times.push(t); } });
    });
    times.sort(function (a, b) { return a - b; });
    var pos = {};
    times.forEach(function (t, i) { pos[t] = i; });
    var data = [times];
    var series = [{}];
    curves.forEach(function (c, k) {
      var ys = new Array(times.length).fill(null);
      c.curve.time.forEach(function (t, i) { ys[pos[t]] = c.curve.return_pct[i]; });
      data.push(ys);
      series.push({ label: c.name, stroke: COLOURS[k % COLOURS.length], width: 1.5, spanGaps: true });
    });
    plot(document.getElementById("compare-chart"), {
      height: 340, series: series, axes: [{}, { size: 60, values: function (u, v) { return v.map(function (x) { return x + " %"; }); } }],
    }, data);
  }

  // Trade times are epoch seconds; show them as UTC dates.
  document.querySelectorAll("td.ts[data-ts]").forEach(function (td) {
    var d = new Date(parseInt(td.dataset.ts, 10) * 1000);
    td.textContent = d.toISOString().slice(0, 16).replace("T", " ");
  });
})();
