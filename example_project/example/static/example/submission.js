/* Live status of one submission: poll the JSON API until every step is finished. */
(function () {
  "use strict";

  var root = document.querySelector("[data-submission-api]");
  if (!root) return;

  var API = root.getAttribute("data-submission-api");
  var TERMINAL = ["ready", "partial", "failed"];
  var BADGES = { pending: "Queued", processing: "Processing", ready: "Ready", partial: "Partly ready", failed: "Failed" };
  var STEPS = {
    created: "Queued", submitting: "Queued", pending: "Queued", processing: "Processing",
    succeeded: "Done", failed: "Failed", cancelled: "Cancelled", superseded: "Replaced"
  };
  var FAST = 1500, SLOW = 15000;
  var delay = FAST;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function renderBadge(status) {
    root.setAttribute("data-status", status);
    var badge = root.querySelector("[data-badge]");
    if (!badge) return;
    badge.className = "badge badge-" + status;
    badge.textContent = BADGES[status] || status;
  }

  function capfirst(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

  // Like views.step_key: a task made through POST tasks/ without a step shows its short id.
  function stepKey(task) {
    if (task.step) return { key: task.step, name: capfirst(task.step) };
    var short = String(task.id || "").replace(/-/g, "").slice(0, 8);
    return { key: "task-" + short, name: capfirst(task.kind) + " · task " + short };
  }

  // The "processing has started" message is stale once the upload is final.
  function dropStaleFlash(status) {
    if (TERMINAL.indexOf(status) === -1) return;
    document.querySelectorAll('[data-flash~="processing"]').forEach(function (node) {
      var list = node.parentNode;
      node.remove();
      if (list && !list.children.length) list.remove();
    });
  }

  // The box takes the video's own shape, so a portrait clip is not squeezed into 16:9.
  function fitPlayer() {
    var video = document.getElementById("player");
    var player = root.querySelector(".player");
    if (!video || !player) return;
    function fit() {
      if (!video.videoWidth || !video.videoHeight) return;
      player.style.aspectRatio = video.videoWidth + " / " + video.videoHeight;
      player.classList.toggle("is-portrait", video.videoHeight > video.videoWidth);
    }
    video.addEventListener("loadedmetadata", fit);
    fit();
  }

  function renderSteps(tasks) {
    var list = root.querySelector("[data-steps]");
    if (!list) return;
    var items = tasks.map(function (task) {
      var done = task.status === "succeeded";
      var progress = done ? 100 : task.progress;
      var label = STEPS[task.status] || task.status;
      if (task.status === "processing" && progress != null) label += " · " + progress + "%";
      var item = el("li", "step step-" + task.status);
      var step = stepKey(task);
      item.setAttribute("data-step", step.key);
      var row = el("div", "step-row");
      row.appendChild(el("span", "step-name", step.name));
      var status = el("span", "step-status", label);
      status.setAttribute("data-step-status", "");
      row.appendChild(status);
      item.appendChild(row);
      var bar = el("div", "progress" + (progress == null ? " progress-unknown" : ""));
      var fill = el("span");
      fill.style.width = (progress || 0) + "%";
      bar.appendChild(fill);
      item.appendChild(bar);
      if (task.error && task.error.message) item.appendChild(el("p", "step-error", task.error.message));
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  // A private storage (S3) signs each URL afresh when the API is read: the same file comes
  // back with a new query string on every poll. Only a new file replaces what is shown, or
  // the playing video would restart.
  function sameFile(current, next) {
    return current != null && current.split("?")[0] === next.split("?")[0];
  }

  function renderMedia(submission) {
    var outputs = submission.outputs || {};
    var video = document.getElementById("player");
    var player = root.querySelector(".player");
    if (outputs.poster) {
      if (video && !sameFile(video.getAttribute("poster"), outputs.poster)) video.setAttribute("poster", outputs.poster);
      var card = root.querySelector("[data-poster-card]");
      var img = root.querySelector("[data-poster]");
      if (img && !sameFile(img.getAttribute("src"), outputs.poster)) img.setAttribute("src", outputs.poster);
      if (card) card.hidden = false;
    }
    if (outputs.video && video && !sameFile(video.getAttribute("src"), outputs.video)) {
      video.setAttribute("src", outputs.video);
      video.load();
    }
    if (player) player.classList.toggle("is-waiting", !outputs.video);
    var wait = root.querySelector("[data-wait-text]");
    if (wait && !outputs.video) {
      wait.textContent = submission.status === "failed"
        ? "Processing failed. See the steps for the reason."
        : "Your video is being processed…";
    }
  }

  function render(submission) {
    renderBadge(submission.status);
    dropStaleFlash(submission.status);
    renderSteps(submission.tasks || []);
    renderMedia(submission);
  }

  function poll() {
    fetch(API, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 403 || response.status === 404) {
          throw new Error("stop");
        }
        if (!response.ok) throw new Error("retry");
        return response.json();
      })
      .then(function (submission) {
        render(submission);
        delay = FAST;
        if (TERMINAL.indexOf(submission.status) === -1) schedule();
      })
      .catch(function (error) {
        if (error && error.message === "stop") return;
        delay = Math.min(delay * 2, SLOW);
        schedule();
      });
  }

  function schedule() {
    window.setTimeout(function () {
      if (document.hidden) { schedule(); return; }
      poll();
    }, delay);
  }

  fitPlayer();
  dropStaleFlash(root.getAttribute("data-status"));
  if (TERMINAL.indexOf(root.getAttribute("data-status")) === -1) schedule();
})();
