// The upload page with JavaScript: files dropped anywhere, pasted, or chosen upload at once, one
// request each, without leaving the page. Each gets a card at once with its name, a local preview
// and a <progress> of the bytes sent; a file the server would refuse (too large, a type it does
// not take) is answered on its card in the server's own words before any byte is sent. Once the
// server has the job, jobs.js polls it and swaps in the server's card.
//
// Plain XMLHttpRequest rather than an upload widget: upload progress is one event on it (fetch
// has none), and the cards must be the server's own (templates/thumbnailer/_job.html), which a
// widget would render its own way. About 150 lines, no build step.
(function () {
  "use strict";

  var form = document.querySelector("form.upload-form");
  var rulesElement = document.getElementById("upload-rules");
  if (!form || !rulesElement || !window.FormData || !window.thumbnailerJobs) { return; }
  var rules = JSON.parse(rulesElement.textContent);
  var input = form.querySelector("input[name=image_file]");
  var list = document.getElementById("upload-jobs");
  var section = document.getElementById("upload-section");
  var template = document.getElementById("pending-card");
  var downloadAll = document.getElementById("download-all");
  var acceptedIds = [];
  document.getElementById("drop-hint").hidden = false;

  // The server's wording for what it would refuse, or null to send the file.
  function refusalOf(file) {
    if (file.size > rules.maxBytes) { return rules.tooLarge; }
    if (!file.type || rules.acceptedTypes.indexOf(file.type) >= 0) { return null; }
    if (rules.refusedTypes[file.type]) { return rules.refusedTypes[file.type]; }
    return file.type.indexOf("image/") === 0 ? null : rules.notAnImage;
  }

  function newCard(file) {
    var card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".job-name").textContent = file.name || "Pasted image";
    card.querySelector(".job-meta").textContent = humanSize(file.size);
    if (file.type.indexOf("image/") === 0 && file.size <= rules.maxBytes) {
      var preview = card.querySelector(".job-preview");
      preview.src = URL.createObjectURL(file);
      preview.alt = "Preview of " + (file.name || "the pasted image");
      preview.hidden = false;
      preview.addEventListener("load", function () { URL.revokeObjectURL(preview.src); });
    }
    section.hidden = false;
    list.appendChild(card);
    return card;
  }

  function humanSize(count) {
    var units = ["KiB", "MiB", "GiB"];
    if (count < 1024) { return count + " bytes"; }
    var value = count, unit = "";
    for (var i = 0; i < units.length; i++) {
      value /= 1024; unit = units[i];
      if (value < 1024) { break; }
    }
    return value.toFixed(1).replace(/\.0$/, "") + " " + unit;
  }

  function fail(card, message, retry) {
    card.className = "job state-failure";
    card.querySelector(".job-state").textContent = "Failed: " + message;
    var progress = card.querySelector(".job-progress");
    if (progress) { progress.remove(); }
    if (retry) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "job-retry";
      button.textContent = "Try again";
      button.addEventListener("click", function () { button.remove(); retry(); });
      card.appendChild(button);
    }
  }

  function send(file, card) {
    var state = card.querySelector(".job-state");
    var progress = card.querySelector(".job-progress");
    var data = new FormData(form);
    data.delete("image_file");
    data.append("image_file", file, file.name || "pasted.png");
    var request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.pathname);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) { progress.value = Math.round(100 * event.loaded / event.total); }
    });
    request.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(request.responseText); } catch (error) { body = null; }
      if (request.status === 202 && body) {
        progress.remove();
        card.className = "job state-pending";
        state.textContent = "Waiting in the queue";
        card.dataset.statusUrl = body.status_url;
        card.dataset.cardUrl = body.card_url;
        card.dataset.finished = "false";
        window.thumbnailerJobs.watch(card, body.task_status);
        // Several files: one zip of them all, made by the server from those finished when asked.
        acceptedIds.push(body.task_id);
        downloadAll.href = downloadAll.pathname + "?ids=" + acceptedIds.join(",");
        downloadAll.hidden = acceptedIds.length < 2;
        return;
      }
      var message = body && body.error ? body.error.message : "The server answered " + request.status + ".";
      // Only a busy or restarting server is worth another try; a refused file would be refused again.
      var retry = request.status >= 500 ? function () { start(file, card); } : null;
      fail(card, message, retry);
    });
    request.addEventListener("error", function () {
      fail(card, "The connection was lost while sending.", function () { start(file, card); });
    });
    state.textContent = "Uploading";
    request.send(data);
  }

  function start(file, card) {
    card.className = "job state-uploading";
    if (!card.querySelector(".job-progress")) {
      var progress = document.createElement("progress");
      progress.className = "job-progress";
      progress.max = 100;
      progress.value = 0;
      card.querySelector(".job-state").after(progress);
    }
    send(file, card);
  }

  function upload(files) {
    Array.prototype.forEach.call(files, function (file) {
      var card = newCard(file);
      var refusal = refusalOf(file);
      if (refusal) { fail(card, refusal, null); return; }
      start(file, card);
    });
  }

  input.addEventListener("change", function () {
    upload(input.files);
    input.value = "";
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.files.length) { upload(input.files); input.value = ""; }
  });

  var dragDepth = 0;
  document.addEventListener("dragenter", function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      dragDepth += 1;
      document.body.classList.add("dropping");
    }
  });
  document.addEventListener("dragleave", function () {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) { document.body.classList.remove("dropping"); }
  });
  document.addEventListener("dragover", function (event) { event.preventDefault(); });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    dragDepth = 0;
    document.body.classList.remove("dropping");
    if (event.dataTransfer && event.dataTransfer.files.length) { upload(event.dataTransfer.files); }
  });
  document.addEventListener("paste", function (event) {
    var files = event.clipboardData ? event.clipboardData.files : [];
    if (files.length) { event.preventDefault(); upload(files); }
  });
})();
