/*
 * qn-explorer-worker.js — runs the explorer's exact-chain replicas off the page's main thread.
 * The page posts one job (see ChainJob in qn-explorer-core.js) and terminates the worker when
 * the settings change, so stale work is dropped at once. Progress is posted about every 100 ms
 * and whenever a replica finishes, so the page draws replicas as they arrive.
 */
/* global importScripts, quadnetExplorer */
"use strict";
importScripts("qn-explorer-core.js");

self.onmessage = function (event) {
  let job;
  try {
    job = new quadnetExplorer.internal.ChainJob(event.data);
  } catch (err) {
    self.postMessage({ id: event.data && event.data.id, error: String(err && err.message || err) });
    return;
  }
  for (;;) {
    const msg = job.work(performance.now() + 100);
    if (msg === null) break;
    self.postMessage(msg);
  }
  self.postMessage({ id: event.data.id, finished: true });
};
