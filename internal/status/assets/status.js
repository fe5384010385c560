// The status page's script: refresh the body every two seconds and draw the commit charts.
// Without it the page is the same tables, refreshed by a meta refresh.
"use strict";
document.documentElement.classList.add("js");

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) {
  if (v >= 1000) return Math.round(v).toLocaleString("en");
  if (v >= 10) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

// bars draws one value per commit, oldest left, scaled to the largest.
function bars(id, commits, value) {
  const box = document.getElementById(id);
  if (!box) return;
  const w = 300, h = 100, top = 12, bottom = 4;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", role: "img" });
  const vals = commits.map(value);
  const peak = Math.max(0, ...vals);
  svg.appendChild(el("line", { x1: 0, y1: h - bottom, x2: w, y2: h - bottom }));
  if (vals.length === 0) {
    svg.appendChild(el("text", { x: 4, y: h / 2 }, "no commit yet"));
  } else {
    const bw = w / Math.max(vals.length, 20);
    vals.forEach((v, i) => {
      const bh = peak > 0 ? (v / peak) * (h - top - bottom) : 0;
      const r = el("rect", { x: i * bw + bw * 0.1, y: h - bottom - bh, width: Math.max(bw * 0.8, 0.5), height: Math.max(bh, 0.5) });
      r.appendChild(el("title", {}, `batch ${commits[i].batch}: ${fmt(v)}`));
      svg.appendChild(r);
    });
    svg.appendChild(el("text", { x: 2, y: 10 }, "max " + fmt(peak)));
  }
  box.replaceChildren(svg);
}

function draw() {
  const data = document.getElementById("commits-data");
  let commits = [];
  try { commits = JSON.parse(data ? data.textContent : "[]") || []; } catch (e) { commits = []; }
  bars("chart-rows", commits, c => c.rows);
  bars("chart-batch", commits, c => c.batch_seconds);
  bars("chart-commit", commits, c => c.commit_seconds);
}

async function refresh() {
  try {
    const r = await fetch("/status", { cache: "no-store" });
    if (r.ok) {
      const open = document.querySelector("details[open]") !== null;
      document.getElementById("status").innerHTML = await r.text();
      if (open) document.querySelectorAll("details").forEach(d => d.open = true);
      draw();
      document.body.classList.remove("stale");
    }
  } catch (e) {
    document.body.classList.add("stale"); // the worker is gone or restarting: keep the last figures
  }
}

draw();
setInterval(refresh, 2000);
