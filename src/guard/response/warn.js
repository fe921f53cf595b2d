// concurrency-guard early warning: tells the user their open form went stale.
// Plain JavaScript, no framework; works under a strict CSP (no inline code,
// styles set through the CSSOM). Progressive enhancement: without it, the
// guard still refuses a stale submission.
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.__concurrencyGuardWarn) return;
  window.__concurrencyGuardWarn = true;
  var every = Math.max(1, Number(me.getAttribute("data-interval")) || 15) * 1000;
  var url = location.pathname + location.search;
  var delay = every, timer = null, stopped = false, busy = false;

  function schedule(ms) {
    clearTimeout(timer);
    if (stopped || document.hidden) return;
    // +/- 20% jitter, so many open pages do not poll in step.
    timer = setTimeout(check, ms * (0.8 + Math.random() * 0.4));
  }

  function check() {
    if (stopped || busy || document.hidden) return;
    busy = true;
    fetch(url, {
      method: "GET",
      // Read each time: the htmx script updates it after the page's own saves.
      headers: { "x-concurrency-token": me.getAttribute("data-token"), "x-concurrency-guard": "check" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      busy = false;
      if (res.status === 409 || res.status === 412) {
        stopped = true;
        warn();
      } else if (res.ok) {
        delay = every;
        schedule(delay);
      } else {
        // Back off on errors, up to five minutes.
        delay = Math.min(delay * 2, 300000);
        schedule(delay);
      }
    }, function () {
      busy = false;
      delay = Math.min(delay * 2, 300000);
      schedule(delay);
    });
  }

  function warn() {
    var box = document.createElement("div");
    box.className = "concurrency-guard-warning";
    box.setAttribute("role", "alert");
    box.setAttribute("aria-live", "assertive");
    var s = box.style;
    s.position = "fixed"; s.left = "1rem"; s.right = "1rem"; s.top = "1rem";
    s.zIndex = "2147483647"; s.padding = "0.9rem 1rem"; s.borderRadius = "6px";
    s.background = "#fff4e5"; s.color = "#3b2300"; s.border = "2px solid #b45f06";
    s.boxShadow = "0 2px 12px rgba(0,0,0,.25)"; s.font = "16px/1.4 system-ui, sans-serif";
    var text = document.createElement("p");
    text.style.margin = "0 0 0.6rem 0";
    text.textContent = "Someone else changed this record since you opened it. " +
      "Reload to see their changes; what you typed stays on this page until you choose.";
    var reload = document.createElement("button");
    reload.type = "button";
    reload.textContent = "Reload with the current data";
    reload.addEventListener("click", function () { location.reload(); });
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.style.marginLeft = "0.6rem";
    dismiss.addEventListener("click", function () { box.remove(); });
    box.appendChild(text);
    box.appendChild(reload);
    box.appendChild(dismiss);
    document.body.appendChild(box);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) clearTimeout(timer); else check();
  });
  window.addEventListener("focus", check);
  schedule(delay);
})();
