// tinycnn explore: the page's behaviour. Plain JavaScript, no framework, no build step.
//
// The page asks the server (tinycnn/explore/server.py) for JSON:
//   GET /api/model      once: the layers, the input the model takes, its first filters
//   POST /api/predict   for every image: the answer and every picture inside the model
//   GET /api/testset    test images (random, or the most confident mistakes)
//   GET /api/history    the run's curves and confusion matrix (again every 5 s while it trains)
"use strict";

const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;   // the server refuses larger bodies
const DRAW_DEBOUNCE_MS = 150;                 // wait this long after the pen stops before asking

const state = {
  model: null,
  request: null,      // the last image asked about (re-sent with a target when a class is clicked)
  busy: false,        // a prediction is on its way
  queued: null,       // the newest request made while busy (older ones are dropped)
  drawTimer: null,
  drawn: false,
  historyTimer: null,
};

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ messages
function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
}

// ------------------------------------------------------------------ talking to the server
async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the tinycnn explore server does not answer (is it still running?)");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) {
    const reason = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const failure = new Error(reason);
    failure.status = response.status;
    throw failure;
  }
  return body;
}

// A request is {kind: "json", body: {...}} or {kind: "file", file: File}.
function send(request, target) {
  if (request.kind === "json") {
    const body = Object.assign({}, request.body);
    if (target !== null && target !== undefined) body.target = target;
    if (body.source === "upload") body.invert = $("invert").checked;
    return api("api/predict", {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body)});
  }
  let query = `?invert=${$("invert").checked ? 1 : 0}`;
  if (target !== null && target !== undefined) query += `&target=${target}`;
  return api("api/predict" + query, {method: "POST", headers: {"Content-Type": "application/octet-stream"},
                                     body: request.file});
}

// Ask about an image; while one answer is on its way, keep only the newest next request.
async function predict(request, target = null) {
  if (state.busy) {
    state.queued = {request, target};
    return;
  }
  state.busy = true;
  document.body.dataset.busy = "1";   // "0" once every answer asked for has come (tests wait for it)
  try {
    const answer = await send(request, target);
    state.request = request;
    clearMessage();
    showAnswer(answer);
  } catch (error) {
    showMessage(error.message);
  } finally {
    state.busy = false;
    if (state.queued) {
      const next = state.queued;
      state.queued = null;
      predict(next.request, next.target);
    } else {
      document.body.dataset.busy = "0";
    }
  }
}

// ------------------------------------------------------------------ the model
async function loadModel() {
  let model;
  try {
    model = await api("api/model");
  } catch (error) {
    showMessage(error.message);
    return;
  }
  state.model = model;
  const params = model.parameters.toLocaleString("en");
  $("model-summary").textContent = `${model.model} trained on ${model.dataset} - ${params} parameters - ` +
    `input ${model.input.channels} x ${model.input.size} x ${model.input.size} - ` +
    `${model.input.classes.length} classes - ${model.weights} weights, on ${model.device}`;
  buildLayers(model);
  buildFilters(model.filters);
  if (!model.drawing) {
    $("tab-draw").hidden = true;
    openPanel(model.testset ? "test-panel" : "upload-panel");
  } else {
    openPanel("draw-panel");
  }
  if (!model.testset) $("tab-test").hidden = true;
  loadHistory();
}

function buildFilters(filters) {
  if (!filters) return;
  $("filters-block").hidden = false;
  const [out, inChannels, kh, kw] = filters.shape;
  $("filters-name").textContent = `(${filters.layer}: ${out} filters of ${inChannels} x ${kh} x ${kw}` +
    `${inChannels === 3 ? ", shown in colour" : inChannels > 1 ? ", their first input channel" : ""})`;
  const box = $("filters");
  box.replaceChildren();
  filters.pictures.forEach((src, k) => {
    const img = element("img", "pixelated filter");
    img.src = src;
    img.title = `filter ${k}`;
    img.addEventListener("click", () => zoom(src, `${filters.layer}: filter ${k} (blue negative, orange positive` +
                                                 ` weights)`));
    box.append(img);
  });
}

function shapeText(shape) {
  return shape.join(" x ");
}

function buildLayers(model) {
  const box = $("layers");
  box.replaceChildren();
  model.layers.forEach((layer, index) => {
    const row = element("div", "layer");
    row.dataset.index = index;
    const info = element("div", "layer-info");
    const title = element("div");
    title.append(element("span", "layer-name", layer.name), document.createTextNode(" "),
                 element("code", null, layer.type));
    info.append(title);
    if (layer.description !== layer.type) info.append(element("div", "layer-description", layer.description));
    info.append(element("div", null, `output ${shapeText(layer.output_shape)} - ` +
                                     `${layer.parameters.toLocaleString("en")} parameters`));
    const maps = element("div", "maps");
    maps.append(element("span", "more", "(waiting for an image)"));
    row.append(info, maps);
    box.append(row);
  });
}

// ------------------------------------------------------------------ one answer
function percent(p) {
  return `${(100 * p).toFixed(p > 0.999 || p < 0.001 ? 2 : 1)}%`;
}

function showAnswer(answer) {
  const best = answer.top[0];
  $("top-class").textContent = best.class;
  $("top-probability").textContent = percent(best.probability);
  $("seen-input").src = answer.input.picture;
  $("seen-normalised").src = answer.input.normalised;
  const [low, high] = answer.input.range;
  $("normalised-caption").textContent = `normalised, as the first layer receives it: values from ` +
    `${low.toFixed(2)} to ${high.toFixed(2)}`;
  showBars(answer);
  const warning = $("warning");
  warning.hidden = !answer.warning;
  warning.textContent = answer.warning || "";

  $("saliency").src = answer.saliency;
  if (answer.gradcam) {
    $("gradcam").src = answer.gradcam;
    $("gradcam-caption").textContent = `Grad-CAM on ${answer.gradcam_layer} ` +
      `(${answer.gradcam_size.join("x")} cells): the regions the decision rests on`;
  } else {
    $("gradcam").removeAttribute("src");
    $("gradcam-caption").textContent = "Grad-CAM: this model has no spatial feature maps";
  }
  $("explained").textContent = `Both explain the score of class "${answer.target_class}".`;
  showLayers(answer.layers);
}

function showBars(answer) {
  const box = $("bars");
  box.replaceChildren();
  answer.top.forEach((entry, rank) => {
    const row = element("div", "bar-row" + (rank === 0 ? " top" : "") +
                               (entry.index === answer.target ? " explained" : ""));
    row.dataset.index = entry.index;
    row.title = `explain class "${entry.class}"`;
    const track = element("div", "bar-track");
    const fill = element("div", "bar-fill");
    fill.style.width = `${Math.max(0.5, 100 * entry.probability)}%`;
    track.append(fill);
    row.append(element("span", "bar-label", entry.class), track, element("span", "bar-value",
                                                                          percent(entry.probability)));
    row.addEventListener("click", () => { if (state.request) predict(state.request, entry.index); });
    box.append(row);
  });
}

function scaleText(scale) {
  return scale.signed ? `from ${scale.low.toPrecision(3)} (blue) through 0 (black) to ${scale.high.toPrecision(3)}` +
    ` (orange)` : `from 0 (black) to ${scale.high.toPrecision(3)} (white)`;
}

function showLayers(layers) {
  const rows = $("layers").children;
  layers.forEach((layer, index) => {
    const row = rows[index];
    if (!row) return;
    const maps = row.querySelector(".maps");
    maps.replaceChildren();
    if (layer.kind === "maps") {
      layer.maps.forEach((src, k) => {
        const img = element("img", "fmap pixelated");
        img.src = src;
        img.alt = `${layer.name} map ${k}`;
        img.title = `map ${k}`;
        img.addEventListener("click", () => zoom(src, `${layer.name}, map ${k} of ${layer.total}: ` +
                                                      scaleText(layer.scale)));
        maps.append(img);
      });
      if (layer.total > layer.shown) {
        maps.append(element("span", "more", `(the first ${layer.shown} of ${layer.total} maps)`));
      }
    } else {
      const img = element("img", "vector pixelated");
      img.src = layer.vector;
      img.alt = `${layer.name}: ${layer.total} values`;
      img.title = `${layer.total} values, ${scaleText(layer.scale)}`;
      maps.append(img);
      maps.append(element("span", "more", `${layer.total} values` +
                          (layer.total > layer.shown ? ` (the first ${layer.shown} drawn)` : "")));
    }
  });
}

function zoom(src, caption) {
  $("zoom-image").src = src;
  $("zoom-caption").textContent = caption;
  $("zoom").hidden = false;
}

// ------------------------------------------------------------------ drawing
function setUpDrawing() {
  const canvas = $("canvas");
  const pen = canvas.getContext("2d");
  const blank = () => {
    pen.fillStyle = "black";
    pen.fillRect(0, 0, canvas.width, canvas.height);
    state.drawn = false;
  };
  blank();
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    pen.strokeStyle = "white";
    pen.lineWidth = canvas.width / 14;   // about 2 pixels of 28 after scaling, like MNIST's pen
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.beginPath();
    pen.moveTo(from[0], from[1]);
    pen.lineTo(to[0], to[1]);
    pen.stroke();
    state.drawn = true;
  };
  const askSoon = () => {
    clearTimeout(state.drawTimer);
    state.drawTimer = setTimeout(askAboutDrawing, DRAW_DEBOUNCE_MS);
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
    askSoon();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const next = point(event);
    stroke(last, next);
    last = next;
    askSoon();
  });
  const lift = () => {
    if (last === null) return;
    last = null;
    clearTimeout(state.drawTimer);
    askAboutDrawing();
  };
  canvas.addEventListener("pointerup", lift);
  canvas.addEventListener("pointercancel", lift);
  $("clear").addEventListener("click", () => { blank(); });
}

function askAboutDrawing() {
  if (!state.drawn) return;
  const image = $("canvas").toDataURL("image/png");
  predict({kind: "json", body: {image, source: "drawing"}});
}

// ------------------------------------------------------------------ uploads
function upload(file) {
  if (!file) return;
  if (file.size > MAX_UPLOAD_BYTES) {
    showMessage(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; at most 10 MB is accepted`);
    return;
  }
  predict({kind: "file", file});
}

function setUpUploads() {
  $("file-input").addEventListener("change", (event) => upload(event.target.files[0]));
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload(event.dataTransfer.files[0]);
  });
  $("invert").addEventListener("change", () => {
    if (state.request && (state.request.kind === "file" || state.request.body.source === "upload")) {
      predict(state.request);
    }
  });
}

// ------------------------------------------------------------------ the test set
async function loadTestImages(mode) {
  const note = $("test-note");
  note.textContent = "loading the test set...";
  let answer;
  try {
    answer = await api(`api/testset?mode=${mode}&count=16`);
  } catch (error) {
    note.textContent = error.message;
    return;
  }
  note.textContent = `${answer.size.toLocaleString("en")} test images, ${answer.mistakes} mistakes ` +
    `(${(100 * answer.accuracy).toFixed(2)}% right). ` +
    (mode === "mistakes" ? "The most confident mistakes first; " : "") + "click one to look inside.";
  const box = $("test-images");
  box.replaceChildren();
  answer.items.forEach((item) => {
    const wrong = item.label !== item.prediction;
    const cell = element("div", "test-item" + (wrong ? " wrong" : ""));
    const img = element("img", "pixelated");
    img.src = item.picture;
    img.alt = `test image ${item.index}`;
    cell.append(img, element("div", null, wrong ? `${item.label} -> ${item.prediction}` : item.label));
    cell.title = `test image ${item.index}: a ${item.label}, the model says ${item.prediction} ` +
      `(${percent(item.confidence)})`;
    cell.addEventListener("click", () => predict({kind: "json", body: {test_index: item.index}}));
    box.append(cell);
  });
}

// ------------------------------------------------------------------ training
async function loadHistory() {
  let answer;
  try {
    answer = await api("api/history");
  } catch (error) {
    $("training-note").textContent = error.message;
    return;
  }
  const history = answer.history;
  const metrics = answer.metrics;
  let note = `${history.length} epoch${history.length === 1 ? "" : "s"} trained`;
  if (metrics && metrics.test_accuracy !== null) {
    note += `; test accuracy ${(100 * metrics.test_accuracy).toFixed(2)}%`;
    $("model-summary").textContent += ` - test accuracy ${(100 * metrics.test_accuracy).toFixed(2)}%`;
  }
  if (!answer.finished) {
    note += ` of ${answer.epochs_planned} planned: the run is still training (or was stopped); this updates ` +
      `every 5 seconds`;
    clearTimeout(state.historyTimer);
    state.historyTimer = setTimeout(loadHistory, 5000);
  }
  $("training-note").textContent = note + ".";
  drawCurves(history);
  drawConfusion(answer);
}

function svgElement(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  return node;
}

function chart(title, history, keys, fraction) {
  const width = 300, height = 180, left = 40, right = 10, top = 20, bottom = 26;
  const svg = svgElement("svg", {width, height, viewBox: `0 0 ${width} ${height}`});
  const values = history.flatMap((r) => keys.map(([key]) => r[key])).filter((v) => typeof v === "number");
  if (history.length === 0 || values.length === 0) return svg;
  let low = Math.min(...values), high = Math.max(...values);
  if (fraction) { high = Math.min(1, high + 0.01); low = Math.max(0, low - 0.01); }
  if (high === low) { high += 1e-3; low -= 1e-3; }
  const epochs = history.map((r) => r.epoch);
  const first = Math.min(...epochs), last = Math.max(...epochs);
  const x = (e) => left + (last === first ? 0.5 : (e - first) / (last - first)) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  svg.append(svgElement("line", {x1: left, y1: top, x2: left, y2: height - bottom, class: "axis"}));
  svg.append(svgElement("line", {x1: left, y1: height - bottom, x2: width - right, y2: height - bottom,
                                 class: "axis"}));
  const label = (text, attributes) => {
    const node = svgElement("text", attributes);
    node.textContent = text;
    svg.append(node);
  };
  label(title, {x: left, y: 13});
  const show = (v) => (fraction ? `${(100 * v).toFixed(1)}%` : v.toPrecision(3));
  label(show(high), {x: 2, y: top + 4});
  label(show(low), {x: 2, y: height - bottom});
  label(`epoch ${first}`, {x: left, y: height - 8});
  label(`${last}`, {x: width - right - 12, y: height - 8});
  keys.forEach(([key, className, name], k) => {
    const points = history.filter((r) => typeof r[key] === "number").map((r) => `${x(r.epoch)},${y(r[key])}`);
    if (points.length === 0) return;
    svg.append(svgElement("polyline", {points: points.join(" "), class: className}));
    label(name, {x: width - right - 80, y: 13 + 11 * k, class: className});
  });
  return svg;
}

function drawCurves(history) {
  const box = $("curves");
  box.replaceChildren(
    chart("loss", history, [["train_loss", "train", "train"], ["val_loss", "val", "validation"]], false),
    chart("accuracy", history, [["train_accuracy", "train", "train"], ["val_accuracy", "val", "validation"]],
          true));
}

function drawConfusion(answer) {
  const box = $("confusion");
  box.replaceChildren();
  if (answer.confusion) {
    const {classes, matrix, note} = answer.confusion;
    box.append(element("h3", null, `Confusion matrix (${note}): rows true, columns predicted`));
    const table = element("table");
    const head = element("tr");
    head.append(element("th", null, ""));
    classes.forEach((name) => head.append(element("th", null, name)));
    table.append(head);
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const line = element("tr");
      line.append(element("th", null, classes[i]));
      row.forEach((count, j) => {
        const cell = element("td", null, count ? String(count) : "");
        const share = count / total;
        cell.style.backgroundColor = i === j ? `rgba(30, 138, 76, ${0.15 + 0.6 * share})`
                                             : `rgba(198, 59, 44, ${count ? 0.1 + 0.9 * Math.sqrt(share) : 0})`;
        cell.title = `true ${classes[i]}, predicted ${classes[j]}: ${count} (${percent(share)} of the row)`;
        line.append(cell);
      });
      table.append(line);
    });
    box.append(table);
  } else if (answer.confusion_picture) {
    box.append(element("h3", null, "Confusion matrix (drawn by tinycnn train)"));
    const img = element("img");
    img.src = answer.confusion_picture;
    img.alt = "confusion matrix";
    box.append(img);
  }
}

// ------------------------------------------------------------------ tabs, start
function openPanel(id) {
  for (const tab of document.querySelectorAll(".tab")) {
    const open = tab.dataset.panel === id;
    tab.classList.toggle("active", open);
    $(tab.dataset.panel).hidden = !open;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => openPanel(tab.dataset.panel));
  }
  $("test-random").addEventListener("click", () => loadTestImages("random"));
  $("test-mistakes").addEventListener("click", () => loadTestImages("mistakes"));
  $("zoom").addEventListener("click", () => { $("zoom").hidden = true; });
  setUpDrawing();
  setUpUploads();
  loadModel();
});
