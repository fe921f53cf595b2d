// concurrency-guard for htmx: shows the guard's conflicts and refusals where
// the form was, keeps the page's tokens current after its saves, and clears
// a conflict's marks once a save passes. No inline code (CSP-safe); htmx 2
// and 4 events; does nothing on pages without htmx.
(function () {
  "use strict";
  var me = document.currentScript;
  if (window.__concurrencyGuardHtmx) return;
  window.__concurrencyGuardHtmx = true;
  var FIELD = (me && me.getAttribute("data-field")) || "_concurrency_token";
  var HEADER = "x-concurrency-token";

  // The token a request carried: its header, else its form field.
  function sent(headers, body) {
    if (headers) {
      for (var k in headers) {
        if (k.toLowerCase() === HEADER) return String(headers[k]);
      }
    }
    if (body && typeof body.get === "function") {
      var v = body.get(FIELD);
      if (typeof v === "string") return v;
    }
    return null;
  }

  // After a write passed, every place that held the token sent gets the
  // fresh one (hidden inputs, hx-headers, the early warning's script).
  function refresh(old, fresh) {
    if (!old || !fresh || old === fresh || !/^[A-Za-z0-9_-]+$/.test(fresh)) return;
    var inputs = document.querySelectorAll("input[type=hidden]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value === old) inputs[i].value = fresh;
    }
    var attrs = ["hx-headers", "hx-vals", "data-hx-headers", "data-hx-vals", "data-token"];
    for (var a = 0; a < attrs.length; a++) {
      var els = document.querySelectorAll("[" + attrs[a] + "]");
      for (var j = 0; j < els.length; j++) {
        var v = els[j].getAttribute(attrs[a]);
        if (v.indexOf(old) >= 0) els[j].setAttribute(attrs[a], v.split(old).join(fresh));
      }
    }
    // htmx's history snapshot keeps the inputs as first rendered: restored
    // with the new token, they would revert the save. Fetch the page instead.
    document.body.setAttribute("hx-history", "false");
  }

  function ok(status) { return status >= 200 && status < 300; }

  // A write (not a GET) from a form passed: the guard's alert and marks of
  // an earlier conflict there are stale.
  var ALERT = "concurrency-conflict-alert", MARK = "concurrency-conflict";
  function settled(elt, method) {
    var form = elt && elt.closest && elt.closest("form");
    if (!form || !method || String(method).toUpperCase() === "GET") return;
    form.querySelectorAll("#" + ALERT + ",." + ALERT).forEach(function (a) { a.remove(); });
    form.querySelectorAll("." + MARK).forEach(function (el) {
      el.classList.remove(MARK);
      if (!el.getAttribute("class")) el.removeAttribute("class");
      el.removeAttribute("aria-invalid");
      var ids = (el.getAttribute("aria-describedby") || "").split(/\s+/)
        .filter(function (id) { return id && id !== ALERT; }).join(" ");
      if (ids) el.setAttribute("aria-describedby", ids);
      else el.removeAttribute("aria-describedby");
    });
  }

  // htmx 2: a 4xx is not swapped by default; the guard's answers are (into
  // the target its HX-Retarget / HX-Reswap headers name: the form).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail && e.detail.xhr;
    if (xhr && xhr.getResponseHeader("x-concurrency-guard")) {
      e.detail.shouldSwap = true;
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var d = e.detail, xhr = d && d.xhr;
    if (!xhr || xhr.__concurrencyGuardDone || !ok(xhr.status)) return;
    xhr.__concurrencyGuardDone = true;
    var c = d.requestConfig || {};
    refresh(sent(c.headers, c.formData), xhr.getResponseHeader(HEADER));
    settled(d.elt, c.verb);
  });
  // htmx 4 swaps 4xx answers itself.
  document.addEventListener("htmx:after:request", function (e) {
    var ctx = e.detail && e.detail.ctx;
    if (!ctx || !ctx.response || !ok(ctx.response.status)) return;
    var req = ctx.request || {};
    refresh(sent(req.headers, req.body), ctx.response.headers.get(HEADER));
    settled(ctx.sourceElement, req.method);
  });
})();
