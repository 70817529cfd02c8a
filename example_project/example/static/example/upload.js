/* Uploads straight to storage: ask the API for a presigned POST, send the file to the bucket
   with a progress bar, then create the submission from its key. Without this script (or when
   the API offers no upload target) the form posts the file to the site as usual. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-direct-upload]");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;

  var input = form.querySelector("input[type=file]");
  var errorBox = form.querySelector("[data-upload-error]");
  var progressBox = form.querySelector("[data-upload-progress]");
  var bar = progressBox.querySelector("progress");
  var label = progressBox.querySelector("[data-upload-progress-label]");
  var button = form.querySelector("button[type=submit]");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  form.setAttribute("data-upload-mode", "direct");

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    progressBox.hidden = true;
    button.disabled = false;
  }

  function apiError(body, fallback) {
    return (body && body.error && body.error.message) || fallback;
  }

  function api(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        return { status: response.status, body: data };
      });
    });
  }

  function sendToStorage(target, file) {
    return new Promise(function (resolve, reject) {
      var data = new FormData();
      Object.keys(target.fields).forEach(function (name) { data.append(name, target.fields[name]); });
      data.append("file", file);  // last: storage reads the fields before the file
      var xhr = new XMLHttpRequest();
      xhr.open("POST", target.url);
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        var percent = Math.floor((event.loaded / event.total) * 100);
        bar.value = percent;
        label.textContent = "Uploading… " + percent + " %";
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new Error("The storage refused the file (HTTP " + xhr.status + ")."));
      });
      xhr.addEventListener("error", function () { reject(new Error("The upload failed: network error.")); });
      xhr.send(data);
    });
  }

  form.addEventListener("submit", function (event) {
    var file = input.files && input.files[0];
    if (!file) return;  // the site answers with its own "choose a file" error
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    bar.value = 0;
    label.textContent = "Uploading…";
    progressBox.hidden = false;

    var ask = new FormData();
    ask.append("filename", file.name);
    ask.append("size", String(file.size));
    api(form.getAttribute("data-direct-upload"), ask).then(function (answer) {
      if (answer.status === 404) {  // no upload target after all: the plain form
        form.setAttribute("data-upload-mode", "plain");
        form.submit();
        return null;
      }
      if (answer.status !== 201) throw new Error(apiError(answer.body, "The file was refused."));
      var target = answer.body;
      return sendToStorage(target, file).then(function () {
        label.textContent = "Uploaded. Starting processing…";
        var create = new FormData();
        ["title", "campaign", "source"].forEach(function (name) {
          var field = form.elements[name];
          if (field) create.append(name, field.value);
        });
        create.append("upload_key", target.upload_key);
        return api(form.getAttribute("data-submissions-api"), create);
      }).then(function (created) {
        if (created.status !== 201) throw new Error(apiError(created.body, "The upload was refused."));
        // "?uploaded": the page shows the message the plain form's redirect gets
        var page = form.getAttribute("data-submission-page").replace("SUBMISSION_ID", created.body.id);
        window.location.assign(page + "?uploaded");
      });
    }).catch(function (error) { showError(error.message); });
  });
})();
