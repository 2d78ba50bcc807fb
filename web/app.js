// diffuse serve: the page. Plain ES2020, no framework, no build step, nothing from the network
// but the server's own /diffuse/v1 API (docs/serve.md).
'use strict';

(() => {
  const API = '/diffuse/v1';
  const $ = (id) => document.getElementById(id);
  const apiKey = new URLSearchParams(location.search).get('api_key') || '';
  const LUMA = [0.299, 0.587, 0.114];  // the server's RGB → gray weights (degradation.cpp)

  const S = {
    models: [],
    samplers: [],
    modes: {},
    jobs: new Map(),    // id → job record
    shown: null,        // the job the progress bar follows
    gallery: [],        // items, newest first
    cv: {               // the canvas
      model: null, size: 28, channels: 1, scale: 11,
      base: null,       // {w, h, data: RGBA Uint8ClampedArray} at native size, or null
      mask: new Uint8Array(28 * 28),
      undo: [], tool: 'brush', drawing: false, last: null, hover: null, strokeStart: null,
    },
  };

  // ------------------------------------------------------------------ HTTP

  function withKey(url) {
    if (!apiKey || !url || url.startsWith('data:')) return url;
    const u = new URL(url, location.href);
    u.searchParams.set('api_key', apiKey);
    return u.origin === location.origin ? u.pathname + u.search : u.href;
  }

  class ApiError extends Error {
    constructor(status, err) {
      super(err.message || 'error');
      this.status = status;
      this.err = err;
    }
  }

  function asErr(e) {
    if (!e) return {message: 'unknown error'};
    if (typeof e === 'string') return {message: e};
    if (e instanceof ApiError) return e.err;
    if (e instanceof Error) return {message: e.message};
    if (typeof e === 'object') return {message: e.message || JSON.stringify(e), field: e.field, hint: e.hint};
    return {message: String(e)};
  }

  async function api(method, path, body) {
    const headers = {Accept: 'application/json'};
    if (apiKey) headers.Authorization = 'Bearer ' + apiKey;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      throw new ApiError(0, {message: 'cannot reach the server', hint: 'is diffuse serve still running?'});
    }
    const text = await res.text();
    let data = null;
    if (text.trim()) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      let err;
      if (data && data.error) err = typeof data.error === 'string' ? {message: data.error} : {...data.error};
      else err = {message: `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`};
      if (!err.message) err.message = `HTTP ${res.status}`;
      if (res.status === 429 && !err.hint) {
        const ra = res.headers.get('Retry-After');
        err.hint = ra ? `try again in ${ra} s` : 'try again later';
      }
      if (res.status === 401 && !err.hint) err.hint = 'open the page as /?api_key=KEY';
      throw new ApiError(res.status, err);
    }
    if (data === null) throw new ApiError(res.status, {message: `${method} ${path}: the answer is not JSON`});
    return data;
  }

  // ------------------------------------------------------------------ errors and status

  function showError(e, context) {
    const err = asErr(e);
    $('error-message').textContent = (context ? context + ': ' : '') + (err.message || 'error');
    $('error-field').textContent = err.field ? `field: ${err.field}` : '';
    $('error-hint').textContent = err.hint || '';
    $('error').hidden = false;
    document.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
    const fieldInput = {
      model: 'model', class: 'class', sampler: 'sampler', sigmas: 'sigmas', steps: 'steps',
      guidance: 'guidance', seed: 'seed', batch: 'batch', method: 'method', factor: 'factor',
      strength: 'strength', image: 'canvas', mask: 'canvas',
    }[err.field];
    if (fieldInput && $(fieldInput)) $(fieldInput).classList.add('invalid');
  }

  function clearError() {
    $('error').hidden = true;
    document.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
  }

  function setStatus(state, text) {
    const st = $('status');
    st.dataset.state = state;
    st.textContent = text;
  }

  // ------------------------------------------------------------------ PNG

  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // zlib stream of `data`: the browser's deflate, or stored blocks where there is none.
  async function zlib(data) {
    if (typeof CompressionStream === 'function') {
      const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
      return new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const blocks = Math.max(1, Math.ceil(data.length / 65535));
    const out = new Uint8Array(2 + data.length + 5 * blocks + 4);
    out[0] = 0x78; out[1] = 0x01;
    let o = 2;
    for (let b = 0; b < blocks; b++) {
      const part = data.subarray(b * 65535, Math.min(data.length, (b + 1) * 65535));
      out[o++] = b === blocks - 1 ? 1 : 0;
      out[o++] = part.length & 0xff; out[o++] = part.length >>> 8;
      out[o++] = ~part.length & 0xff; out[o++] = (~part.length >>> 8) & 0xff;
      out.set(part, o); o += part.length;
    }
    let a = 1, b2 = 0;
    for (let i = 0; i < data.length; i++) { a = (a + data[i]) % 65521; b2 = (b2 + a) % 65521; }
    const adler = ((b2 << 16) | a) >>> 0;
    out[o++] = adler >>> 24; out[o++] = (adler >>> 16) & 0xff; out[o++] = (adler >>> 8) & 0xff; out[o++] = adler & 0xff;
    return out;
  }

  // An 8-bit PNG, gray (channels 1) or RGB (channels 3), of RGBA pixels {w, h, data}
  // (gray: the luma of R, G, B, exact for gray pictures), as a data URI.
  async function encodePNG(px, channels) {
    const {w, h, data} = px;
    const raw = new Uint8Array(h * (1 + w * channels));
    let o = 0;
    for (let y = 0; y < h; y++) {
      raw[o++] = 0;  // filter: none
      for (let x = 0; x < w; x++) {
        const i = 4 * (y * w + x);
        if (channels === 1) {
          raw[o++] = Math.round(LUMA[0] * data[i] + LUMA[1] * data[i + 1] + LUMA[2] * data[i + 2]);
        } else {
          raw[o++] = data[i]; raw[o++] = data[i + 1]; raw[o++] = data[i + 2];
        }
      }
    }
    const idat = await zlib(raw);
    const chunks = [];
    const chunk = (type, body) => {
      const c = new Uint8Array(12 + body.length);
      const dv = new DataView(c.buffer);
      dv.setUint32(0, body.length);
      for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
      c.set(body, 8);
      dv.setUint32(8 + body.length, crc32(c.subarray(4, 8 + body.length)));
      chunks.push(c);
    };
    const ihdr = new Uint8Array(13);
    const dv = new DataView(ihdr.buffer);
    dv.setUint32(0, w); dv.setUint32(4, h);
    ihdr[8] = 8; ihdr[9] = channels === 1 ? 0 : 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    chunk('IHDR', ihdr);
    chunk('IDAT', idat);
    chunk('IEND', new Uint8Array(0));
    const sig = [137, 80, 78, 71, 13, 10, 26, 10];
    const total = 8 + chunks.reduce((n, c) => n + c.length, 0);
    const png = new Uint8Array(total);
    png.set(sig, 0);
    let p = 8;
    for (const c of chunks) { png.set(c, p); p += c.length; }
    let bin = '';
    for (let i = 0; i < png.length; i += 0x8000) bin += String.fromCharCode.apply(null, png.subarray(i, i + 0x8000));
    return 'data:image/png;base64,' + btoa(bin);
  }

  // PNG header facts from the bytes: null if not a PNG.
  function pngHeader(bytes) {
    const sig = [137, 80, 78, 71, 13, 10, 26, 10];
    if (bytes.length < 33 || sig.some((v, i) => bytes[i] !== v)) return null;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return {w: dv.getUint32(16), h: dv.getUint32(20), depth: bytes[24], colorType: bytes[25]};
  }

  // Pixels of an image (a Blob, or a URL / data URI) as RGBA at native size, no colour management.
  async function loadPixels(src) {
    let blob = src;
    if (!(src instanceof Blob)) {
      const headers = {};
      if (apiKey && !String(src).startsWith('data:')) headers.Authorization = 'Bearer ' + apiKey;
      const res = await fetch(src, {headers});
      if (!res.ok) throw new Error(`cannot load the image (HTTP ${res.status})`);
      blob = await res.blob();
    }
    let bmp;
    try {
      bmp = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
    } catch (e) {
      throw new Error('the file is not an image the browser can read');
    }
    const c = document.createElement('canvas');
    c.width = bmp.width; c.height = bmp.height;
    const ctx = c.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(bmp, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    if (bmp.close) bmp.close();
    return {w: c.width, h: c.height, data};
  }

  function isGray(px) {
    const d = px.data;
    for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
    return true;
  }

  function toGray(px) {
    const d = new Uint8ClampedArray(px.data.length);
    for (let i = 0; i < d.length; i += 4) {
      const g = Math.round(LUMA[0] * px.data[i] + LUMA[1] * px.data[i + 1] + LUMA[2] * px.data[i + 2]);
      d[i] = d[i + 1] = d[i + 2] = g; d[i + 3] = 255;
    }
    return {w: px.w, h: px.h, data: d};
  }

  // Average pooling by f (the server's avg_pool2d): the low-res input of a super-resolution.
  function avgPool(px, f) {
    const w = Math.floor(px.w / f), h = Math.floor(px.h / f);
    const d = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += px.data[4 * ((y * f + dy) * px.w + x * f + dx) + c];
          d[4 * (y * w + x) + c] = Math.round(s / (f * f));
        }
        d[4 * (y * w + x) + 3] = 255;
      }
    }
    return {w, h, data: d};
  }

  // ------------------------------------------------------------------ models and samplers

  const model = (name) => S.models.find((m) => m.name === name) || null;
  const currentModel = () => model($('model').value);
  const channelWord = (c) => (c === 1 ? 'gray' : c === 3 ? 'RGB' : `${c}-channel`);

  function option(sel, value, text) {
    const o = document.createElement('option');
    o.value = value; o.textContent = text;
    sel.appendChild(o);
    return o;
  }

  function fillSelect(sel, values, preferred, labels) {
    const prev = sel.value;
    sel.textContent = '';
    values.forEach((v, i) => option(sel, v, labels ? labels[i] : v));
    if (values.includes(prev)) sel.value = prev;
    else if (values.includes(preferred)) sel.value = preferred;
  }

  async function loadModels() {
    const r = await api('GET', `${API}/models`);
    S.models = Array.isArray(r.models) ? r.models : [];
    const sel = $('model');
    const prev = sel.value;
    sel.textContent = '';
    for (const m of S.models) option(sel, m.name, `${m.name}  (${m.image_size}×${m.image_size} ${channelWord(m.channels)})`);
    if (model(prev)) sel.value = prev;
    if (!S.models.length) showError({message: 'the server has no models', hint: 'diffuse serve --runs DIR loads the image runs in DIR'});
    onModelChange();
  }

  async function loadSamplers() {
    const r = await api('GET', `${API}/samplers`);
    S.samplers = (r.samplers || []).map((s) => (typeof s === 'string' ? {name: s} : s));
    S.modes = r.modes || {};
    const names = S.samplers.map((s) => s.name);
    const labels = names;
    fillSelect($('sampler'), names, 'dpm++2m', labels);
    S.samplers.forEach((smp, i) => { $('sampler').options[i].title = smp.stochastic ? 'stochastic' : 'deterministic'; });
    const rs = $('rsampler');
    const prev = rs.value;
    rs.textContent = '';
    option(rs, '', 'default');
    names.forEach((n, i) => option(rs, n, labels[i]));
    if (names.includes(prev)) rs.value = prev;
    const sigmas = Array.isArray(r.sigmas) && r.sigmas.length ? r.sigmas : ['timesteps'];
    fillSelect($('sigmas'), sigmas, 'timesteps');
    fillSelect($('method'), S.modes.inpaint && S.modes.inpaint.length ? S.modes.inpaint : ['repaint'], 'repaint');
    const rm = [...new Set([...(S.modes.upscale || []), ...(S.modes.colorize || [])])];
    fillSelect($('rmethod'), rm.length ? rm : ['ddnm'], 'ddnm');
  }

  function onModelChange() {
    const m = currentModel();
    const cls = $('class');
    const prevClass = cls.value;
    cls.textContent = '';
    if (!m) {
      $('model-info').textContent = '';
      return;
    }
    if (m.class_conditional) {
      option(cls, '', 'classes in turn (restorations: none)');
      (m.classes || []).forEach((c, i) => option(cls, c, `${i} · ${c}`));
      if ((m.classes || []).includes(prevClass)) cls.value = prevClass;
      cls.disabled = false;
      $('guidance').disabled = false;
    } else {
      option(cls, '', 'none (unconditional model)');
      cls.disabled = true;
      $('guidance').disabled = true;
    }
    if (m.T) { $('steps').max = m.T; $('rsteps').max = m.T; }
    const parts = [`${m.image_size}×${m.image_size} ${channelWord(m.channels)}`];
    if (m.class_conditional) parts.push(`${(m.classes || []).length} classes`);
    if (m.prediction) parts.push(`${m.prediction}-prediction`);
    if (m.T) parts.push(`T ${m.T}`);
    if (m.step !== undefined) parts.push(`trained ${m.step} steps`);
    $('model-info').textContent = `${m.name}: ${parts.join(' · ')}`;
    setupCanvas(m);
    updateCanvasButtons();
  }

  // ------------------------------------------------------------------ form values

  function intOf(id) {
    const v = $(id).value.trim();
    if (!/^-?\d+$/.test(v)) throw Object.assign(new Error(`${labelText(id)} must be a whole number`), {field: id});
    return parseInt(v, 10);
  }

  function numOf(id) {
    const v = Number($(id).value);
    if ($(id).value.trim() === '' || !Number.isFinite(v)) throw Object.assign(new Error(`${labelText(id)} must be a number`), {field: id});
    return v;
  }

  function labelText(id) {
    const l = $(id).closest('label');
    return l ? l.firstChild.textContent.replace(/[·(].*$/, '').trim().toLowerCase() : id;
  }

  const fieldOfInput = {rsteps: 'steps', rsampler: 'sampler', rmethod: 'method', 'strength-range': 'strength'};

  // The fields every job takes from the Generate panel (class and guidance only for this model).
  function commonFields(m, mode) {
    const b = {model: m.name, mode};
    const same = m.name === $('model').value;
    const cls = same ? $('class').value : '';
    if (cls) b.class = cls;
    if (m.class_conditional && (cls || mode === 'generate')) b.guidance = numOf('guidance');
    b.seed = intOf('seed');
    b.batch = intOf('batch');
    return b;
  }

  // ------------------------------------------------------------------ jobs

  async function submit(body, input) {
    clearError();
    let r;
    try {
      r = await api('POST', `${API}/jobs`, body);
    } catch (e) {
      showError(e, `${body.mode} was refused`);
      return null;
    }
    const job = {
      id: String(r.id), mode: body.mode, model: body.model, input: input || null,
      state: r.state || 'queued', position: r.position || 0, step: 0, steps: body.steps || 0,
      eta: null, preview: null, finished: false, es: null, pollTimer: null, seconds: null, count: 0,
    };
    S.jobs.set(job.id, job);
    S.shown = job.id;
    $('preview').dataset.kind = 'none';
    $('preview').classList.add('stale');  // the last job's picture, until this one's first preview
    renderProgress();
    follow(job);
    return job;
  }

  // A browser opens at most 6 HTTP/1.1 connections to a server, and every event stream holds
  // one: at most MAX_STREAMS jobs are followed by their event streams, the others by polling
  // until a stream is free (the newest job first, as it is the one shown).
  const MAX_STREAMS = 4;
  const openStreams = () => [...S.jobs.values()].filter((j) => j.es && !j.finished).length;

  function follow(job) {
    if (openStreams() < MAX_STREAMS) listen(job);
    else poll(job);
  }

  function promote() {
    const waiting = [...S.jobs.values()].filter((j) => !j.finished && !j.es).reverse();
    for (const j of waiting) {
      if (openStreams() >= MAX_STREAMS) break;
      if (j.pollTimer) { clearTimeout(j.pollTimer); j.pollTimer = null; }
      j.connLost = false;
      listen(j);
    }
  }

  function parseData(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }

  function listen(job) {
    const es = new EventSource(withKey(`${API}/jobs/${encodeURIComponent(job.id)}/events`));
    job.es = es;
    es.addEventListener('progress', (ev) => {
      const d = parseData(ev);
      if (!d || job.finished) return;
      if (job.connLost) {
        job.connLost = false;
        if (job.pollTimer) { clearTimeout(job.pollTimer); job.pollTimer = null; }
      }
      if (d.state) job.state = d.state;
      if (d.position !== undefined) job.position = d.position;
      if (d.step !== undefined) job.step = d.step;
      if (d.steps) job.steps = d.steps;
      if (d.eta_seconds !== undefined) job.eta = d.eta_seconds;
      if (d.preview) job.preview = d.preview;
      if (S.shown === job.id) renderProgress();
    });
    es.addEventListener('done', (ev) => finish(job, parseData(ev), 'done'));
    es.addEventListener('error', (ev) => {
      if (typeof ev.data === 'string') {  // the server's "event: error": the job failed or was cancelled
        finish(job, parseData(ev), 'failed');
        return;
      }
      // A connection problem: the browser reconnects by itself (and a stream opened on a
      // finished job sends its last event at once). Meanwhile, and when it gives up, ask for
      // the job instead: that tells a finished job, a lost job (404) or a server gone.
      if (job.finished) return;
      if (es.readyState === EventSource.CLOSED) job.es = null;
      job.connLost = true;
      if (S.shown === job.id) renderProgress();
      poll(job);
    });
  }

  function poll(job) {
    if (job.pollTimer || job.finished) return;
    let failures = 0;
    const tick = async () => {
      job.pollTimer = null;
      if (job.finished || (!job.connLost && job.es)) return;
      try {
        const j = await api('GET', `${API}/jobs/${encodeURIComponent(job.id)}`);
        failures = 0;
        if (['done', 'failed', 'cancelled'].includes(j.state)) { finish(job, j, j.state); return; }
        job.state = j.state || job.state;
        job.position = j.position || 0;
        if (j.progress) { job.step = j.progress.step || 0; job.steps = j.progress.steps || job.steps; job.eta = j.progress.eta_seconds; }
        if (S.shown === job.id) renderProgress();
      } catch (e) {
        if ((e.status && e.status !== 429) || ++failures > 10) {
          finish(job, {state: 'failed', error: asErr(e)}, 'failed');
          return;
        }
      }
      if (job.finished || (!job.connLost && job.es)) return;
      job.pollTimer = setTimeout(tick, 1000);
    };
    job.pollTimer = setTimeout(tick, 300);
  }

  function jobError(e) {
    if (!e) return {message: 'the job failed'};
    return asErr(e);
  }

  function finish(job, data, fallbackState) {
    if (job.finished) return;
    job.finished = true;
    if (job.es) { job.es.close(); job.es = null; }
    if (job.pollTimer) { clearTimeout(job.pollTimer); job.pollTimer = null; }
    setTimeout(promote, 0);
    data = data || {state: 'failed', error: {message: 'the event stream ended without the job'}};
    job.state = data.state || fallbackState;
    job.data = data;
    job.seconds = data.seconds;
    if (job.state === 'done') {
      const images = Array.isArray(data.images) ? data.images : [];
      job.count = images.length;
      addJobToGallery(data, job);
      if (data.progress && data.progress.steps) { job.steps = data.progress.steps; job.step = data.progress.steps; }
    } else if (job.state === 'failed') {
      job.error = jobError(data.error);
      showError(job.error, `${job.mode} job ${job.id} failed`);
    }
    if (S.shown === job.id) {
      renderProgress();
      // Follow the newest job still going, if any.
      const active = [...S.jobs.values()].filter((j) => !j.finished);
      if (active.length) {
        S.shown = active[active.length - 1].id;
        setTimeout(renderProgress, 1200);
      }
    }
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || !Number.isFinite(Number(s))) return '…';
    s = Number(s);
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 90) return `${Math.round(s)} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  function renderProgress() {
    const job = S.shown ? S.jobs.get(S.shown) : null;
    const bar = $('progress'), text = $('progress-text'), prev = $('preview');
    const active = [...S.jobs.values()].filter((j) => !j.finished).length;
    const others = job && !job.finished ? active - 1 : active;
    const more = others > 0 ? ` · ${others} more job${others > 1 ? 's' : ''} going` : '';
    $('cancel').disabled = !job || job.finished || !['queued', 'running'].includes(job.state);
    if (!job) {
      bar.max = 1; bar.value = 0;
      text.textContent = 'idle';
      setStatus('idle', 'ready');
      return;
    }
    const what = `${job.mode} · job ${job.id}`;
    const lost = job.connLost && !job.finished ? ' · connection lost, retrying…' : '';
    if (job.preview && !job.finished && prev.getAttribute('src') !== job.preview) {
      prev.src = job.preview;
      prev.dataset.kind = 'live';
      prev.classList.remove('empty', 'stale');
    }
    switch (job.state) {
      case 'queued':
        bar.removeAttribute('value');  // indeterminate
        text.textContent = job.position > 0
          ? `queued: position ${job.position}, ${job.position} waiting job${job.position > 1 ? 's' : ''} ahead${more}`
          : `queued: next in line${more}`;
        text.textContent += lost;
        setStatus('queued', `${what} · queued #${job.position}`);
        break;
      case 'running': {
        const steps = job.steps || 1;
        bar.max = steps; bar.value = Math.min(job.step, steps);
        const pct = Math.floor((100 * job.step) / steps);
        text.textContent = `step ${job.step} / ${steps} · ${pct} % · ETA ${fmtSeconds(job.eta)}${more}${lost}`;
        setStatus('running', `${what} · running ${pct} %`);
        break;
      }
      case 'done': {
        bar.max = 1; bar.value = 1;
        text.textContent = `done: ${job.count} image${job.count === 1 ? '' : 's'}` +
          (job.seconds !== undefined && job.seconds !== null ? ` in ${fmtSeconds(job.seconds)}` : '') + more;
        setStatus('done', `${what} · done`);
        const first = job.data && job.data.images && job.data.images[0];
        if (first) {
          const src = first.png || withKey(first.url);
          if (prev.getAttribute('src') !== src) prev.src = src;
          prev.dataset.kind = 'result';
          prev.classList.remove('empty', 'stale');
        }
        break;
      }
      case 'cancelled':
        bar.max = job.steps || 1; bar.value = Math.min(job.step, bar.max);  // where it stopped
        text.textContent = `cancelled${job.step ? ` at step ${job.step} / ${job.steps}` : ''}${more}`;
        setStatus('cancelled', `${what} · cancelled`);
        break;
      case 'failed':
        bar.max = job.steps || 1; bar.value = Math.min(job.step, bar.max);
        text.textContent = `failed: ${job.error ? job.error.message : 'error'}${more}`;
        setStatus('failed', `${what} · failed`);
        break;
      default:
        text.textContent = job.state;
        setStatus(job.state, `${what} · ${job.state}`);
    }
  }

  async function cancelShown() {
    const job = S.shown ? S.jobs.get(S.shown) : null;
    if (!job || job.finished) return;
    $('cancel').disabled = true;
    $('progress-text').textContent = 'cancelling…';
    try {
      const j = await api('POST', `${API}/jobs/${encodeURIComponent(job.id)}/cancel`);
      if (j && ['cancelled', 'failed', 'done'].includes(j.state)) finish(job, j, j.state);
    } catch (e) {
      showError(e, 'cancel failed');
      renderProgress();
    }
  }

  // ------------------------------------------------------------------ generate

  async function generate(ev) {
    if (ev) ev.preventDefault();
    const m = currentModel();
    if (!m) { showError({message: 'no model to run'}); return; }
    let body;
    try {
      body = commonFields(m, 'generate');
      body.sampler = $('sampler').value;
      if ($('sigmas').value) body.sigmas = $('sigmas').value;
      body.steps = intOf('steps');
    } catch (e) {
      showError({message: e.message, field: fieldOfInput[e.field] || e.field});
      return;
    }
    $('generate').disabled = true;
    try { await submit(body); } finally { $('generate').disabled = false; }
  }

  // ------------------------------------------------------------------ restorations

  // mode: inpaint, upscale, colorize, edit. px: RGBA at the model's size.
  // display: the picture of the input shown in the result's corner (default: the image sent).
  async function restore(mode, m, px, mask, display) {
    if (!m) { showError({message: 'no model for this image'}); return; }
    if (px.w !== m.image_size || px.h !== m.image_size) {
      showError({message: `the image is ${px.w}×${px.h}; ${m.name} takes ${m.image_size}×${m.image_size}`, field: 'image'});
      return;
    }
    let body;
    let send = px, channels = m.channels === 1 ? 1 : 3;
    try {
      body = commonFields(m, mode);
      body.steps = intOf('rsteps');
      if ($('rsampler').value) body.sampler = $('rsampler').value;
      if (mode === 'inpaint') {
        body.method = $('method').value;
      } else if (mode === 'upscale') {
        const f = intOf('factor');
        if (m.image_size % f) throw Object.assign(new Error(`${m.image_size} px is not divisible by ${f}`), {field: 'factor'});
        send = avgPool(px, f);
        body.factor = f;
        if ((S.modes.upscale || []).includes($('rmethod').value)) body.method = $('rmethod').value;
      } else if (mode === 'colorize') {
        if (m.channels !== 3) throw Object.assign(new Error(`colorize needs an RGB model; ${m.name} is ${channelWord(m.channels)}`), {field: 'model'});
        send = toGray(px);
        channels = 1;
        if ((S.modes.colorize || []).includes($('rmethod').value)) body.method = $('rmethod').value;
      } else if (mode === 'edit') {
        const s = numOf('strength');
        if (!(s > 0 && s <= 1)) throw Object.assign(new Error('edit strength must lie in (0, 1]'), {field: 'strength'});
        body.strength = s;
        if (S.modes.edit && S.modes.edit.length === 1) body.method = S.modes.edit[0];
      }
    } catch (e) {
      showError({message: e.message, field: fieldOfInput[e.field] || e.field});
      return;
    }
    body.image = await encodePNG(send, channels);
    if (mask) body.mask = mask;
    return submit(body, display || body.image);
  }

  // ------------------------------------------------------------------ gallery

  function paramLines(data, img, k) {
    const p = data.params || {};
    const mode = data.mode || 'generate';
    const l1 = [p.sampler, p.steps !== undefined ? `${p.steps} steps` : null,
      p.guidance !== undefined && p.guidance !== null ? `guidance ${p.guidance}` : null].filter((x) => x !== null && x !== undefined);
    let cls = img.class !== undefined ? img.class : p.class;
    if (cls === undefined || cls === null || cls === '') cls = mode === 'generate' ? 'in turn' : 'none';
    const seed = img.seed !== undefined ? img.seed : (p.seed !== undefined ? p.seed + k : '?');
    const l2 = [`class ${cls}`, `seed ${seed}`];
    const extra = [];
    if (p.method && mode !== 'generate') extra.push(p.method);
    if (mode === 'upscale' && p.factor) extra.push(`×${p.factor}`);
    if (mode === 'edit' && p.strength !== undefined) extra.push(`strength ${p.strength}`);
    return {title: `${data.model || ''} · ${mode}${extra.length ? ' (' + extra.join(', ') + ')' : ''}`, l1: l1.join(' · '), l2: l2.join(' · '), seed};
  }

  function addJobToGallery(data, job) {
    const images = Array.isArray(data.images) ? data.images : [];
    const modelName = data.model || job.model;
    const items = images.map((img, k) => {
      const lines = paramLines({...data, model: modelName, mode: data.mode || job.mode}, img, k);
      return {
        job: String(data.id || job.id), k, model: modelName, mode: data.mode || job.mode,
        seed: lines.seed, png: img.png || null, url: img.url || null, input: job.input, lines,
      };
    });
    const g = $('gallery');
    const note = g.querySelector('.empty-note');
    if (note) note.remove();
    // Newest first; a job's images keep their order.
    const first = g.firstChild;
    for (const it of items) {
      S.gallery.unshift(it);
      g.insertBefore(galleryNode(it), first);
    }
    updateGalleryCount();
  }

  function updateGalleryCount() {
    const n = $('gallery').querySelectorAll('.gallery-item').length;
    $('gallery-count').textContent = n ? `${n} image${n > 1 ? 's' : ''}` : '';
  }

  function galleryNode(it) {
    const fig = document.createElement('figure');
    fig.className = 'gallery-item';
    fig.dataset.seed = String(it.seed);
    fig.dataset.job = it.job;
    fig.dataset.index = String(it.k);
    fig.dataset.mode = it.mode;
    const thumb = document.createElement('div');
    thumb.className = 'thumb';
    const img = document.createElement('img');
    img.className = 'pix';
    img.alt = `${it.mode} result, seed ${it.seed}`;
    img.src = it.png || withKey(it.url);
    thumb.appendChild(img);
    if (it.input) {
      const inp = document.createElement('img');
      inp.className = 'pix inset';
      inp.src = it.input;
      inp.alt = 'input';
      inp.title = 'the input sent to the model';
      thumb.appendChild(inp);
    }
    fig.appendChild(thumb);
    const cap = document.createElement('figcaption');
    const t = document.createElement('div');
    t.className = 'p-title';
    t.textContent = it.lines.title;
    const a = document.createElement('div');
    a.textContent = it.lines.l1;
    const b = document.createElement('div');
    b.textContent = it.lines.l2;
    cap.append(t, a, b);
    fig.appendChild(cap);
    const acts = document.createElement('div');
    acts.className = 'actions';
    if (it.url || it.png) {
      const dl = document.createElement('a');
      dl.href = it.url ? withKey(it.url) : it.png;
      dl.download = `${it.model}-${it.mode}-seed${it.seed}.png`;
      dl.textContent = 'download';
      dl.className = 'btn-link';
      acts.appendChild(dl);
    }
    const m = model(it.model);
    const btn = (act, label, title, enabled = true) => {
      const x = document.createElement('button');
      x.type = 'button';
      x.dataset.act = act;
      x.textContent = label;
      x.title = title;
      x.disabled = !enabled;
      acts.appendChild(x);
    };
    btn('reuse', 'reuse seed', `set the seed to ${it.seed}`);
    btn('inpaint', 'inpaint', 'load this image into the canvas');
    btn('upscale', 'upscale', 'super-resolution of the low-res version of this image', !!m);
    btn('colorize', 'colorize', m && m.channels === 3 ? 'colorize the gray version of this image' : 'colorize needs an RGB (3-channel) model', !!m && m.channels === 3);
    btn('edit', 'edit', 'SDEdit this image at the edit strength', !!m);
    fig.appendChild(acts);
    fig.addEventListener('click', (ev) => {
      const b2 = ev.target.closest('button[data-act]');
      if (b2) galleryAction(it, b2.dataset.act);
    });
    return fig;
  }

  async function galleryAction(it, act) {
    if (act === 'reuse') {
      $('seed').value = String(it.seed);
      flash($('seed'));
      return;
    }
    const m = model(it.model);
    if (!m) { showError({message: `model ${it.model} is gone`}); return; }
    let px;
    try {
      px = await loadPixels(it.png || withKey(it.url));
    } catch (e) {
      showError(e, 'cannot read the image');
      return;
    }
    if (act === 'inpaint') {
      if ($('model').value !== m.name) { $('model').value = m.name; onModelChange(); }
      setCanvasImage(px, `gallery: job ${it.job}, seed ${it.seed}`);
      $('canvas').scrollIntoView({block: 'nearest', behavior: 'smooth'});
      return;
    }
    await restore(act, m, px);
  }

  function flash(el) {
    el.classList.remove('flash');
    void el.offsetWidth;
    el.classList.add('flash');
  }

  // Done jobs still on the server, from an earlier visit (best effort).
  async function loadRecent() {
    let r;
    try { r = await api('GET', `${API}/jobs`); } catch (e) { return; }
    const list = Array.isArray(r) ? r : (Array.isArray(r.jobs) ? r.jobs : []);
    const done = list.filter((j) => j && j.state === 'done' && Array.isArray(j.images) && j.images.length && j.images.every((i) => i.url || i.png));
    // Oldest first, so that the newest ends on top.
    done.sort((a, b) => (Number(a.id) || 0) - (Number(b.id) || 0));
    for (const j of done) addJobToGallery(j, {id: j.id, model: j.model, mode: j.mode, input: null});
  }

  // ------------------------------------------------------------------ canvas

  const base = document.createElement('canvas');     // the image, native size
  const overlay = document.createElement('canvas');  // the mask, tinted, native size

  function setupCanvas(m) {
    const cv = S.cv;
    const same = cv.model && cv.size === m.image_size && cv.channels === m.channels;
    cv.model = m.name;
    if (same) { drawCanvas(); return; }
    cv.size = m.image_size;
    cv.channels = m.channels;
    cv.scale = Math.max(1, Math.floor(260 / cv.size));
    cv.base = null;
    cv.mask = new Uint8Array(cv.size * cv.size);
    cv.undo = [];
    const c = $('canvas');
    c.width = c.height = cv.size * cv.scale;
    c.style.width = c.style.height = `${cv.size * cv.scale}px`;
    base.width = base.height = overlay.width = overlay.height = cv.size;
    $('mask').width = $('mask').height = cv.size;
    $('canvas-source').textContent = `No image: use “inpaint” on a gallery image, or upload a ${cv.size}×${cv.size} PNG.`;
    updateMask();
  }

  function setCanvasImage(px, source) {
    const cv = S.cv;
    let p = px;
    let note = '';
    if (cv.channels === 1 && !isGray(px)) { p = toGray(px); note = ' (converted to gray)'; }
    cv.base = p;
    base.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(p.data), p.w, p.h), 0, 0);
    $('canvas-source').textContent = `${source}${note} · ${p.w}×${p.h}`;
    $('canvas').dataset.loaded = '1';
    drawCanvas();
    updateCanvasButtons();
  }

  function updateCanvasButtons() {
    const has = !!S.cv.base;
    const m = currentModel();
    $('inpaint').disabled = !has;
    $('canvas-edit').disabled = !has;
    $('canvas-upscale').disabled = !has;
    $('canvas-colorize').disabled = !has || !m || m.channels !== 3;
  }

  function maskCount() {
    let n = 0;
    for (const v of S.cv.mask) n += v;
    return n;
  }

  function updateMask() {
    const cv = S.cv, n = cv.size;
    const mc = $('mask').getContext('2d');
    const mi = mc.createImageData(n, n);
    const oc = overlay.getContext('2d');
    const oi = oc.createImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const v = cv.mask[i] ? 255 : 0;
      mi.data[4 * i] = mi.data[4 * i + 1] = mi.data[4 * i + 2] = v;
      mi.data[4 * i + 3] = 255;
      if (cv.mask[i]) {
        oi.data[4 * i] = 235; oi.data[4 * i + 1] = 60; oi.data[4 * i + 2] = 110; oi.data[4 * i + 3] = 160;
      }
    }
    mc.putImageData(mi, 0, 0);
    oc.putImageData(oi, 0, 0);
    const count = maskCount();
    $('mask-info').textContent = `mask: ${count} px · ${Math.round((100 * count) / (n * n))} %`;
    $('mask-info').title = 'pixels to fill (white in the mask sent)';
    $('undo').disabled = cv.undo.length === 0;
    drawCanvas();
  }

  function drawCanvas() {
    const cv = S.cv, c = $('canvas'), ctx = c.getContext('2d');
    const W = c.width, k = cv.scale;
    ctx.imageSmoothingEnabled = false;
    if (cv.base) {
      ctx.drawImage(base, 0, 0, W, W);
    } else {
      const cell = Math.max(k, 8);
      for (let y = 0; y < W; y += cell) {
        for (let x = 0; x < W; x += cell) {
          ctx.fillStyle = ((x + y) / cell) % 2 ? '#e4e6ea' : '#eef0f3';
          ctx.fillRect(x, y, cell, cell);
        }
      }
    }
    ctx.drawImage(overlay, 0, 0, W, W);
    if (cv.hover) {
      const r = ($('brush-size').valueAsNumber / 2) * k;
      ctx.beginPath();
      ctx.arc(cv.hover.x * k, cv.hover.y * k, Math.max(r, 2), 0, 2 * Math.PI);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = cv.tool === 'brush' ? 'rgba(235,60,110,0.95)' : 'rgba(40,40,40,0.9)';
      ctx.stroke();
    }
  }

  function toNative(ev) {
    const r = $('canvas').getBoundingClientRect();
    return {x: ((ev.clientX - r.left) / r.width) * S.cv.size, y: ((ev.clientY - r.top) / r.height) * S.cv.size};
  }

  // Marks (brush) or clears (eraser) the pixels whose centres lie within the brush's radius of
  // the segment a → b, and the pixels under a and b.
  function paint(a, b) {
    const cv = S.cv, n = cv.size;
    const r = $('brush-size').valueAsNumber / 2;
    const v = cv.tool === 'brush' ? 1 : 0;
    const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r)), x1 = Math.min(n - 1, Math.ceil(Math.max(a.x, b.x) + r));
    const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r)), y1 = Math.min(n - 1, Math.ceil(Math.max(a.y, b.y) + r));
    const dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5, py = y + 0.5;
        let t = len2 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0;
        t = Math.max(0, Math.min(1, t));
        const ex = a.x + t * dx - px, ey = a.y + t * dy - py;
        if (ex * ex + ey * ey <= r * r) cv.mask[y * n + x] = v;
      }
    }
    for (const p of [a, b]) {
      const x = Math.floor(p.x), y = Math.floor(p.y);
      if (x >= 0 && y >= 0 && x < n && y < n) cv.mask[y * n + x] = v;
    }
  }

  function pushUndo() {
    S.cv.undo.push(S.cv.mask.slice());
    if (S.cv.undo.length > 100) S.cv.undo.shift();
  }

  function setTool(tool) {
    S.cv.tool = tool;
    $('brush').setAttribute('aria-pressed', String(tool === 'brush'));
    $('eraser').setAttribute('aria-pressed', String(tool === 'eraser'));
    drawCanvas();
  }

  function bindCanvas() {
    const c = $('canvas');
    c.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      try { c.setPointerCapture(ev.pointerId); } catch (e) { /* not capturable */ }
      const cv = S.cv;
      pushUndo();
      cv.strokeStart = cv.undo[cv.undo.length - 1];
      cv.drawing = true;
      cv.last = toNative(ev);
      cv.hover = cv.last;
      paint(cv.last, cv.last);
      updateMask();
    });
    c.addEventListener('pointermove', (ev) => {
      const cv = S.cv;
      const p = toNative(ev);
      cv.hover = p;
      if (cv.drawing) {
        paint(cv.last, p);
        cv.last = p;
        updateMask();
      } else {
        drawCanvas();
      }
    });
    const end = () => {
      const cv = S.cv;
      if (!cv.drawing) return;
      cv.drawing = false;
      // A stroke that changed nothing leaves no undo step.
      const s = cv.strokeStart;
      if (s && s.every((v, i) => v === cv.mask[i])) cv.undo.pop();
      cv.strokeStart = null;
      updateMask();
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    c.addEventListener('pointerleave', () => { S.cv.hover = null; if (!S.cv.drawing) drawCanvas(); });

    $('brush').addEventListener('click', () => setTool('brush'));
    $('eraser').addEventListener('click', () => setTool('eraser'));
    $('brush-size').addEventListener('input', () => { $('brush-size-value').textContent = $('brush-size').value; drawCanvas(); });
    $('undo').addEventListener('click', undo);
    $('clear').addEventListener('click', () => {
      if (!maskCount()) return;
      pushUndo();
      S.cv.mask.fill(0);
      updateMask();
    });
    document.addEventListener('keydown', (ev) => {
      const t = ev.target;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
      if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'z') { ev.preventDefault(); undo(); }
      else if (ev.key === 'b' && !ev.ctrlKey && !ev.metaKey) setTool('brush');
      else if (ev.key === 'e' && !ev.ctrlKey && !ev.metaKey) setTool('eraser');
    });

    $('upload').addEventListener('change', async () => {
      const f = $('upload').files && $('upload').files[0];
      $('upload').value = '';
      if (!f) return;
      const m = currentModel();
      if (!m) return;
      const bytes = new Uint8Array(await f.arrayBuffer());
      const h = pngHeader(bytes);
      if (!h) {
        showError({message: `${f.name} is not a PNG file`, field: 'image', hint: 'upload a PNG'});
        return;
      }
      if (h.w !== m.image_size || h.h !== m.image_size) {
        showError({
          message: `${f.name} is ${h.w}×${h.h}; ${m.name} takes ${m.image_size}×${m.image_size} images`,
          field: 'image', hint: `upload a ${m.image_size}×${m.image_size} PNG`,
        });
        return;
      }
      try {
        const px = await loadPixels(new Blob([bytes], {type: 'image/png'}));
        clearError();
        setCanvasImage(px, `upload: ${f.name}`);
      } catch (e) {
        showError(e, `cannot read ${f.name}`);
      }
    });

    $('inpaint').addEventListener('click', async () => {
      const cv = S.cv;
      if (!cv.base) return;
      if (!maskCount()) {
        showError({message: 'the mask is empty', field: 'mask', hint: 'paint the part to fill with the brush'});
        return;
      }
      const n = cv.size;
      const md = new Uint8ClampedArray(n * n * 4);
      for (let i = 0; i < n * n; i++) { md[4 * i] = md[4 * i + 1] = md[4 * i + 2] = cv.mask[i] ? 255 : 0; md[4 * i + 3] = 255; }
      const mask = await encodePNG({w: n, h: n, data: md}, 1);
      // The input as shown in the gallery: the image with the part to fill tinted.
      const shown = document.createElement('canvas');
      shown.width = shown.height = n;
      const sctx = shown.getContext('2d');
      sctx.drawImage(base, 0, 0);
      sctx.drawImage(overlay, 0, 0);
      await restore('inpaint', currentModel(), cv.base, mask, shown.toDataURL('image/png'));
    });
    $('canvas-edit').addEventListener('click', () => S.cv.base && restore('edit', currentModel(), S.cv.base));
    $('canvas-upscale').addEventListener('click', () => S.cv.base && restore('upscale', currentModel(), S.cv.base));
    $('canvas-colorize').addEventListener('click', () => S.cv.base && restore('colorize', currentModel(), S.cv.base));
  }

  function undo() {
    const cv = S.cv;
    if (!cv.undo.length || cv.drawing) return;
    cv.mask = cv.undo.pop();
    updateMask();
  }

  // ------------------------------------------------------------------ start

  function bind() {
    $('gen-form').addEventListener('submit', generate);
    $('cancel').addEventListener('click', cancelShown);
    $('seed-random').addEventListener('click', () => { $('seed').value = '-1'; flash($('seed')); });
    $('model').addEventListener('change', onModelChange);
    $('error-close').addEventListener('click', clearError);
    $('strength-range').addEventListener('input', () => { $('strength').value = $('strength-range').value; });
    $('strength').addEventListener('input', () => { $('strength-range').value = $('strength').value; });
    $('gallery-clear').addEventListener('click', () => {
      $('gallery').querySelectorAll('.gallery-item').forEach((el) => el.remove());
      S.gallery = [];
      updateGalleryCount();
    });
    bindCanvas();
  }

  async function main() {
    bind();
    setStatus('loading', 'loading…');
    try {
      await loadSamplers();
      await loadModels();
    } catch (e) {
      setStatus('failed', 'offline');
      showError(e, 'cannot load the models');
      return;
    }
    setStatus('idle', 'ready');
    await loadRecent();
    document.body.dataset.ready = '1';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
})();
