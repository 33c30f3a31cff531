// HomeSec web UI: small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Times are rendered in UTC on the server; show them in the viewer's time zone.
  for (const node of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      node.title = node.textContent;
      node.textContent = moment.toLocaleString();
    }
  }

  // Filters apply as soon as a choice changes; unset ones stay out of the URL.
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select, input[type=date]")) form.requestSubmit();
    });
    form.addEventListener("submit", () => {
      for (const field of form.elements) {
        if (field.name && !field.value) field.disabled = true;
      }
    });
  }

  // Detections and timeline entries jump the player to their moment.
  const player = document.getElementById("player");
  if (player) {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("[data-seek]");
      if (!button) return;
      player.currentTime = Number(button.dataset.seek);
      player.play().catch(() => {});
    });
  }
});

// Zones: a click on the snapshot shows the point as a zone's config writes it, [x, y] in 0..1.
document.addEventListener("click", (event) => {
  const picture = event.target.closest("#zones");
  const output = document.getElementById("zone-point");
  if (!picture || !output) return;
  const area = picture.getBoundingClientRect();
  const x = Math.min(Math.max((event.clientX - area.left) / area.width, 0), 1);
  const y = Math.min(Math.max((event.clientY - area.top) / area.height, 0), 1);
  output.textContent = `[${x.toFixed(3)}, ${y.toFixed(3)}]`;
});

// A clip without a snapshot (yet) shows the placeholder instead of a broken image.
document.addEventListener(
  "error",
  (event) => {
    if (event.target instanceof HTMLImageElement) event.target.classList.add("missing");
  },
  true,
);

// A camera's day: each clip's mark at its time (set here: the CSP allows no inline style).
document.addEventListener("DOMContentLoaded", () => {
  for (const mark of document.querySelectorAll(".day-timeline [data-left]")) {
    mark.style.left = `${mark.dataset.left}%`;
  }
});

// A camera's live picture: fetched again every few seconds while the page is shown.
document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("img[data-refresh-ms]");
  if (!live) return;
  const base = live.getAttribute("src");
  setInterval(() => {
    if (!document.hidden) live.src = `${base}?t=${Date.now()}`;
  }, Number(live.dataset.refreshMs));
});
