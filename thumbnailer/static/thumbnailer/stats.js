// Draws the activity chart from the summaries embedded in the page: bars for jobs
// succeeded and failed per period, a line for p95 processing time.
(function () {
  "use strict";
  var canvas = document.getElementById("activity-chart");
  var source = document.getElementById("chart-data");
  if (!canvas || !source) { return; }
  var rows = JSON.parse(source.textContent);
  var context = canvas.getContext("2d");
  var width = canvas.width, height = canvas.height, pad = 30;
  var maxJobs = Math.max(1, Math.max.apply(null, rows.map(function (r) { return r.jobs_succeeded + r.jobs_failed; })));
  var maxMs = Math.max(1, Math.max.apply(null, rows.map(function (r) { return r.processing_p95_ms || 0; })));
  var step = (width - 2 * pad) / rows.length;
  var barWidth = Math.max(1, step * 0.7);

  context.fillStyle = "#666";
  context.font = "12px sans-serif";
  context.fillText(maxJobs + " jobs", 2, pad - 8);
  context.fillText(maxMs + " ms", width - 60, pad - 8);
  context.strokeStyle = "#ccc";
  context.beginPath();
  context.moveTo(pad, height - pad);
  context.lineTo(width - pad, height - pad);
  context.stroke();

  rows.forEach(function (row, index) {
    var x = pad + index * step;
    var okHeight = (row.jobs_succeeded / maxJobs) * (height - 2 * pad);
    var badHeight = (row.jobs_failed / maxJobs) * (height - 2 * pad);
    context.fillStyle = "#3a8f5c";
    context.fillRect(x, height - pad - okHeight, barWidth, okHeight);
    context.fillStyle = "#c0392b";
    context.fillRect(x, height - pad - okHeight - badHeight, barWidth, badHeight);
  });

  context.strokeStyle = "#2c5aa0";
  context.lineWidth = 2;
  context.beginPath();
  rows.forEach(function (row, index) {
    var x = pad + index * step + barWidth / 2;
    var y = height - pad - ((row.processing_p95_ms || 0) / maxMs) * (height - 2 * pad);
    if (index === 0) { context.moveTo(x, y); } else { context.lineTo(x, y); }
  });
  context.stroke();
})();
