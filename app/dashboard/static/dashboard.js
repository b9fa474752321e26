/* slatesim dashboard: refreshes the live parts of a page from the JSON API.
 * Pages are complete without this script; it only keeps numbers current. It writes text with
 * textContent and builds rows with createElement, never HTML from data. */
(function () {
  "use strict";

  var body = document.body;
  var source = body.dataset.source;
  var period = Number(body.dataset.refreshMs || 2000);
  var cancelledCode = body.dataset.cancelledCode;

  function fields(name) {
    return document.querySelectorAll('[data-field="' + name + '"]');
  }

  function setText(name, text, root) {
    (root || document).querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function count(value) {
    return value === null || value === undefined ? "\u2014" : Number(value).toLocaleString("en-US");
  }

  function percent(fraction) {
    return (fraction * 100).toFixed(1) + "%";
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").split(".")[0].replace(/Z$/, "") + " UTC" : "\u2014";
  }

  function showLive(ok) {
    fields("live").forEach(function (el) {
      el.hidden = ok;
      el.textContent = ok ? "" : "not updating: the last refresh failed";
    });
  }

  // Poll `source` every `period` ms; `apply` returns false to stop.
  function poll(apply) {
    function tick() {
      fetch(source, { headers: { Accept: "application/json" }, cache: "no-store",
                      credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          showLive(true);
          if (apply(data) !== false) { window.setTimeout(tick, period); }
        })
        .catch(function () {
          showLive(false);
          window.setTimeout(tick, period);
        });
    }
    window.setTimeout(tick, period);
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }

  function applyOverview(data) {
    var queue = data.queue || {};
    var finished = data.finished_last_hour || {};
    setText("pending", count(queue.pending));
    setText("running", count(queue.running));
    setText("complete_last_hour", count(finished.complete));
    setText("failed_last_hour", count(finished.failed));
    fields("status").forEach(function (el) {
      el.textContent = data.status.replace("_", " ");
      el.className = "status status-" + data.status;
    });
    fields("workers").forEach(function (tbody) {
      var rows = (data.workers || []).map(function (worker) {
        var tr = document.createElement("tr");
        tr.appendChild(cell(worker.worker));
        tr.appendChild(cell(count(worker.running), "num"));
        return tr;
      });
      if (!rows.length) {
        var tr = document.createElement("tr");
        tr.className = "empty";
        var td = cell(data.workers ? "No job is running." : "\u2014");
        td.colSpan = 2;
        tr.appendChild(td);
        rows = [tr];
      }
      tbody.replaceChildren.apply(tbody, rows);
    });
    Object.keys(data.checks || {}).forEach(function (name) {
      var row = document.querySelector('tr[data-check="' + name + '"]');
      if (!row) { return; }
      var check = data.checks[name];
      setText("check-status", check.status, row);
      row.querySelector('[data-field="check-status"]').className = "status status-" + check.status;
      setText("check-latency", check.latency_ms.toFixed(1) + " ms", row);
      setText("check-error", check.error || "", row);
    });
    setText("updated", new Date(data.time_ms).toISOString().replace("T", " ").split(".")[0] + " UTC");
  }

  function stateLabel(job) {
    if (job.error && job.error.code === cancelledCode) { return "cancelled"; }
    if ((job.state === "pending" || job.state === "running") && job.cancel_requested_at) {
      return "cancelling";
    }
    return job.state;
  }

  function applyJob(job) {
    fields("state").forEach(function (el) {
      el.textContent = stateLabel(job);
      el.className = "state state-" + job.state;
    });
    if (job.progress) {
      fields("progress").forEach(function (el) { el.value = job.progress.fraction; });
      setText("scenarios_done", count(job.progress.scenarios_done));
      setText("fraction", percent(job.progress.fraction));
    }
    setText("started_at", when(job.started_at));
    setText("attempts", String(job.attempts));
    setText("lost_attempts", String(job.lost_attempts));
    setText("worker", (job.metadata && job.metadata.worker) || "\u2014");
    if (job.state !== "pending" && job.state !== "running") {
      // Finished: the server draws the result (or the error); one reload shows it.
      window.location.replace(window.location.pathname);
      return false;
    }
    return true;
  }

  if (!source) { return; }
  if (body.dataset.page === "overview") { poll(applyOverview); }
  if (body.dataset.page === "job" && body.dataset.live === "true") { poll(applyJob); }
})();
