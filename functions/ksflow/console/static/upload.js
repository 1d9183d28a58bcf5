// Direct uploads, as any client does them: the API hands out presigned part URLs, the browser PUTs the
// bytes straight to the documents bucket (they never pass through the API), then completes the upload.
// XMLHttpRequest, not fetch: only it reports upload progress.

import { ApiError, post } from "/console/api.js";

/** Why storage refused a part: S3 answers an XML error whose <Code> names it. */
function storageRefusal(xhr) {
  const code = xhr.responseXML && xhr.responseXML.querySelector("Error > Code");
  const reason = code ? `: ${code.textContent}` : "";
  return `The documents bucket refused the upload (HTTP ${xhr.status}${reason}). Start it again.`;
}

/** The part's ETag if the bucket's CORS rule exposes it (asking for a hidden header logs an error). */
function exposedEtag(xhr) {
  const line = xhr.getAllResponseHeaders().split("\r\n").find((l) => l.toLowerCase().startsWith("etag:"));
  return line ? line.slice(line.indexOf(":") + 1).trim() : null;
}

/** PUT one part's bytes; resolves to the ETag the bucket answered (null when CORS does not expose it). */
function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size);
        resolve(exposedEtag(xhr));
      } else {
        reject(new Error(storageRefusal(xhr)));
      }
    });
    xhr.addEventListener("error", () => reject(new Error(
      "The documents bucket could not be reached (network error, or its CORS rules refuse this page's origin).")));
    xhr.addEventListener("abort", () => reject(new Error("The upload was stopped.")));
    xhr.send(blob);
  });
}

/**
 * Upload `file` to `destination`: `{path_part_id}` of a folder makes a new document there, `{document_id}` a
 * new version of that document. `onProgress(fraction)` follows the bytes sent (0 to 1). Resolves to the API's
 * `{workflow_id, document_id, document_version_id}`; rejects with an Error (an ApiError for the API's
 * refusals: 404, 409, 410, 422) whose message says why.
 */
export async function uploadFile(file, destination, onProgress) {
  const upload = await post("/v1/documents/uploads", {
    ...destination, name: file.name, size_bytes: file.size, content_type: file.type || undefined,
  });
  const sent = new Map();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0) / file.size);
  const parts = [];
  // Parts go one after another: a file's parts share the connection, and progress reads in order.
  for (const part of upload.parts) {
    const start = (part.part_number - 1) * upload.part_size;
    const blob = file.slice(start, Math.min(start + upload.part_size, file.size));
    const etag = await putPart(part.url, blob, (loaded) => { sent.set(part.part_number, loaded); report(); });
    parts.push({ part_number: part.part_number, etag });
  }
  // A single part may be completed without its etag; several need every one (the bucket's CORS exposes ETag).
  const body = parts.every((p) => p.etag) ? { parts } : {};
  if (parts.length > 1 && !body.parts) {
    throw new ApiError(0, "The documents bucket did not expose the parts' ETag header, which a multi-part "
      + "upload needs: add ETag to its CORS rule's exposed headers.", null);
  }
  return post(`/v1/documents/uploads/${encodeURIComponent(upload.upload_id)}/complete`, body);
}

/** Run `worker(item)` over `items`, at most `limit` at a time (uploads go 2 by 2). */
export async function eachLimited(items, limit, worker) {
  const queue = [...items];
  const lanes = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await worker(queue.shift());
  });
  await Promise.all(lanes);
}
