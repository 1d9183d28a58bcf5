// The knowledge tree: a folder's contents with breadcrumbs, new folders, drag-and-drop uploads straight
// to the documents bucket, a document's versions with their ingestions (and new versions uploaded the same
// way), deletes confirmed in the page, and the tenant's ingestions.
// `#/documents` is the tenant's root folder, `#/documents/<folder id>` any other, `?document=<id>` opens
// a document's panel.

import { api, get, post, reportUnexpected } from "/console/api.js";
import { h, mount } from "/console/dom.js";
import { poll } from "/console/poll.js";
import {
  actionButton, clipped, confirmInPage, errorBox, facts, heading, notify, pager, replaceQuery, shortId, statusBadge,
  table, time, userText,
} from "/console/ui.js";
import { eachLimited, uploadFile } from "/console/upload.js";

const CONTENTS_PAGE = 50;
const INGESTIONS_PAGE = 10;
const OPEN_INGESTION = new Set(["pending", "processing"]);
const PARALLEL_UPLOADS = 2;

/** The ingestion of a document version: its workflow id is `ingest-{version id}` for good. */
const workflowIdOf = (versionId) => `ingest-${versionId}`;

const folderHref = (folderId, rootId) => (folderId === rootId ? "#/documents"
  : `#/documents/${encodeURIComponent(folderId)}`);

/** A part the caller cannot read is a 404, like one that does not exist. */
const unlessHidden = (error) => { if (error.status === 404) return null; throw error; };
/** An id from the address that is no id at all (422) is as missing as one that names nothing. */
const unlessMissing = (error) => { if (error.status === 422) return null; return unlessHidden(error); };

/** Files dropped on `zone` or chosen with its `input` go to `onFiles`. */
function acceptFiles(zone, input, onFiles) {
  input.addEventListener("change", () => { onFiles([...input.files]); input.value = ""; });
  const hovering = (on) => zone.classList.toggle("drag-over", on);
  zone.addEventListener("dragenter", (event) => { event.preventDefault(); hovering(true); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); hovering(true); });
  zone.addEventListener("dragleave", () => hovering(false));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    hovering(false);
    onFiles(event.dataTransfer ? [...event.dataTransfer.files] : []);
  });
}

/**
 * The root folder (`/`): its path part id comes with the signed-in user, its folder id with the path part.
 * Null for a USER without a grant on it: such a user starts from the parts shared with them.
 */
async function rootFolder(me) {
  if (!me.root_path_part_id) throw new Error("The API did not say where this tenant's documents start.");
  const part = await get(`/v1/path-parts/${encodeURIComponent(me.root_path_part_id)}`).catch(unlessHidden);
  return part && get(`/v1/folders/${encodeURIComponent(part.metadata_obj_id)}`);
}

/** The readable ancestors of a folder, root first, each `{id, name}`: one read per level (trees are shallow). */
async function ancestorsOf(folder) {
  const chain = [];
  let parentId = folder.parent_path_part_id;
  while (parentId && chain.length < 50) {
    const part = await get(`/v1/path-parts/${encodeURIComponent(parentId)}`).catch(unlessHidden);
    if (!part) break; // above a USER's grant
    chain.unshift({ id: part.metadata_obj_id, name: part.name, isRoot: !part.parent_path_id });
    parentId = part.parent_path_id;
  }
  return chain;
}

function breadcrumbs(folder, ancestors, rootId) {
  const crumbs = [...ancestors, { id: folder.id, name: folder.name, isRoot: !folder.parent_path_part_id }];
  if (!crumbs[0].isRoot) crumbs.unshift({ id: null, name: "Shared with you" });
  return h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumb" },
    h("ol", {}, crumbs.map((crumb, index) => h("li", {},
      h("a", { href: crumb.id ? folderHref(crumb.id, rootId) : "#/documents",
               "aria-current": index === crumbs.length - 1 ? "page" : null },
        crumb.isRoot ? "Root /" : userText(crumb.name))))));
}

/** For a USER who cannot read the root: the folders and documents granted to them, as starting points. */
async function renderShared(container, context) {
  const grants = await get("/v1/user-permissions",
    { tenant_id: context.me.current_tenant_id, user_id: context.me.id, limit: 100 });
  const parts = await Promise.all(grants.items.map((g) => get(`/v1/path-parts/${encodeURIComponent(g.path_part_id)}`)
    .catch(unlessHidden)));
  const rows = grants.items.map((grant, index) => ({ grant, part: parts[index] })).filter((r) => r.part);
  // A document shared on its own has no readable folder to show it in: its path is listed as text.
  const place = ({ part }) => (part.part_type === "FOLDER"
    ? h("a", { href: `#/documents/${encodeURIComponent(part.metadata_obj_id)}` }, clipped(part.materialized_path, 120))
    : clipped(part.materialized_path, 120));
  mount(container,
    heading("Documents"),
    h("p", { class: "muted" }, "Your role reaches documents through the folders and documents shared with you."),
    table("Shared with you", [
      { label: "Path", cell: place },
      { label: "Type", cell: (r) => (r.part.part_type === "FOLDER" ? "Folder" : "Document") },
      { label: "Access", cell: (r) => (r.grant.capability === "READ_WRITE" ? "Read and write" : "Read only") },
    ], rows, "Nothing is shared with you yet: ask an owner or admin of this tenant for access."));
}

/**
 * An ingestion's status, chunks, error and times as table columns, plus Rerun/Cancel where they apply.
 * `ingestionOf(row)` gives the row's ingestion detail (null: none); `act` runs an action and refreshes.
 */
function ingestionColumns(ingestionOf, act) {
  const value = (row, read) => {
    const ingestion = ingestionOf(row);
    return ingestion ? read(ingestion) : h("span", { class: "muted" }, "—");
  };
  return [
    { label: "Ingestion", cell: (row) => value(row, (i) => statusBadge(i.status)) },
    { label: "Chunks", class: "num", cell: (row) => value(row, (i) => (i.chunks_processed ?? "—").toString()) },
    { label: "Error", cell: (row) => value(row, (i) => clipped(i.error, 120)) },
    { label: "Started", cell: (row) => value(row, (i) => time(i.start_time)) },
    { label: "Finished", cell: (row) => value(row, (i) => time(i.close_time)) },
    { label: "Actions", cell: (row) => value(row, (i) => ingestionActions(i, act)) },
  ];
}

function ingestionActions(ingestion, act) {
  const id = ingestion.workflow_id;
  if (OPEN_INGESTION.has(ingestion.status)) {
    return actionButton("Cancel", () => act(() => api("DELETE", `/v1/workflows/${encodeURIComponent(id)}`)),
      { class: "danger", "aria-label": `Cancel ingestion ${id}` });
  }
  return actionButton("Rerun", () => act(() => post(`/v1/workflows/document_versions/${encodeURIComponent(id)}`)),
    { "aria-label": `Rerun ingestion ${id}` });
}

/** Ingestion details by workflow id, read again only when the summary says it changed. */
class IngestionCache {
  constructor() { this.entries = new Map(); }

  async detail(workflowId, stamp) {
    const known = this.entries.get(workflowId);
    if (known && stamp !== undefined && known.stamp === stamp && !OPEN_INGESTION.has(known.detail.status)) {
      return known.detail;
    }
    let detail = null;
    try {
      detail = await get(`/v1/workflows/document_versions/${encodeURIComponent(workflowId)}`);
    } catch (error) {
      if (error.status !== 404) throw error; // a version without a file has no ingestion
    }
    this.entries.set(workflowId, { stamp, detail });
    return detail;
  }
}

const signatureOf = (items) => JSON.stringify(items.map((i) => i && [i.workflow_id, i.status, i.chunks_processed,
  i.error, i.last_state_update_timestamp]));

export async function render(container, context) {
  const root = await rootFolder(context.me);
  if (!root && !context.params[0]) {
    await renderShared(container, context);
    return;
  }
  const folder = context.params[0] ? await get(`/v1/folders/${encodeURIComponent(context.params[0])}`)
    .catch(unlessMissing) : root;
  if (!folder) {
    mount(container, heading("Folder not found"),
      h("p", { class: "error-box", role: "alert" },
        "No folder with this id exists in your tenant, or you are not allowed to see it."),
      h("p", {}, h("a", { href: "#/documents" }, "Back to the documents")));
    return;
  }
  const rootId = root ? root.id : null;
  const ancestors = folder.id === rootId ? [] : await ancestorsOf(folder);
  const documentId = context.query.get("document");
  const state = { offset: Math.max(0, Number.parseInt(context.query.get("offset") || "0", 10) || 0),
                  ingestionsOffset: 0 };
  const cache = new IngestionCache();
  const documentHref = (id) => `${folderHref(folder.id, rootId)}?document=${encodeURIComponent(id)}`;

  const contentsArea = h("div", { class: "results" });
  const documentArea = documentId ? h("section", { class: "card document-panel", "aria-labelledby": "document-title" })
    : null;
  const ingestionsArea = h("div", { class: "results" });
  const actionStatus = h("div", { class: "action-status" });

  /** Run an ingestion action, show the API's answer or refusal, then refresh what shows ingestions. */
  async function act(action) {
    mount(actionStatus);
    try {
      const answer = await action();
      notify(answer && answer.message ? answer.message : "Done.");
    } catch (error) {
      mount(actionStatus, errorBox(error));
      return;
    }
    restartPolling();
  }

  // Contents --------------------------------------------------------------------------------------------------
  const contentsConfirm = h("div", { class: "confirm-area" });
  const contentsTitle = h("h2", { id: "contents-title", tabindex: "-1" }, "Contents of ",
    userText(folder.materialized_path));
  const deleteCell = (item) => {
    if (!item.can_write) return h("span", { class: "muted" }, "—");
    const kind = item.part_type === "FOLDER" ? "folder" : "document";
    const button = h("button", { type: "button", class: "danger", "aria-label": `Delete ${kind} ${item.name}` },
      "Delete");
    button.addEventListener("click",
      () => askToDelete(contentsConfirm, { kind, id: item.id, name: item.name }, button));
    return button;
  };
  const contentColumns = [
    {
      label: "Name",
      cell: (item) => (item.part_type === "FOLDER"
        ? h("a", { href: folderHref(item.id, rootId), class: "folder-link" }, clipped(item.name, 80))
        : h("a", { href: documentHref(item.id) }, clipped(item.name, 80))),
    },
    { label: "Type", cell: (item) => (item.part_type === "FOLDER" ? "Folder" : `Document · ${item.document_type}`) },
    { label: "Updated", cell: (item) => time(item.updated_at) },
  ];
  const actionsColumn = { label: "Actions", cell: deleteCell };

  async function loadContents() {
    let page;
    try {
      page = await get(`/v1/folders/${encodeURIComponent(folder.id)}/contents`,
        { limit: CONTENTS_PAGE, offset: state.offset || undefined });
    } catch (error) {
      mount(contentsArea, errorBox(error));
      return;
    }
    if (!context.isCurrent()) return;
    mount(contentsArea,
      // Only those who may delete something here see the column.
      table("Folder contents", page.items.some((item) => item.can_write) ? [...contentColumns, actionsColumn]
        : contentColumns, page.items, folder.can_write === false ? "This folder is empty."
        : "This folder is empty: create a folder or upload files."),
      page.total > page.limit ? pager(page, (offset) => {
        state.offset = offset;
        replaceQuery(offset ? { offset: String(offset) } : {});
        loadContents();
      }, "items") : null);
  }

  // New folder ------------------------------------------------------------------------------------------------
  const folderName = h("input", { id: "new-folder-name", name: "name", required: true, maxlength: "255",
                                  autocomplete: "off" });
  const folderStatus = h("div", {});
  const folderForm = h("form", { class: "new-folder", "aria-label": "New folder" },
    h("div", { class: "field" }, h("label", { for: "new-folder-name" }, "New folder name"), folderName),
    h("button", { type: "submit" }, "Create folder"), folderStatus);
  folderForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = folderForm.querySelector("button");
    const name = folderName.value.trim();
    if (!name) {
      mount(folderStatus, errorBox("Give the folder a name."));
      folderName.focus();
      return;
    }
    button.disabled = true;
    try {
      await post("/v1/folders", { name, parent_path_part_id: folder.path_part_id });
      folderName.value = "";
      mount(folderStatus);
      notify(["Folder “", userText(name), "” created."]);
      await loadContents();
    } catch (error) {
      mount(folderStatus, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });

  // Uploads ---------------------------------------------------------------------------------------------------
  const uploads = []; // {file, destination, uploaded, view, workflowId, ingestion}
  const uploadList = h("ul", { class: "upload-list", "aria-label": "Uploads" });
  const fileInput = h("input", { id: "upload-files", type: "file", multiple: true, class: "drop-input" });
  const dropZone = h("div", { class: "drop-zone", id: "drop-zone" },
    h("label", { for: "upload-files" }, "Upload files"),
    h("p", { class: "muted" }, "Drop files here, or choose them with this control. They go straight to the "
      + "documents bucket and are ingested as they arrive."),
    fileInput);

  function uploadRow(file) {
    const progress = h("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
    const percent = h("span", { class: "upload-percent" }, "0%");
    const status = h("span", { class: "upload-status" }, statusBadge("queued"));
    const detail = h("div", { class: "upload-detail" });
    const name = h("span", { class: "upload-name" }, clipped(file.name, 80));
    const row = h("li", { class: "upload" }, name, h("span", { class: "upload-progress" }, progress, percent),
      status, detail);
    return { row, name, progress, percent, status, detail };
  }

  function showIngestion(entry) {
    const i = entry.ingestion;
    mount(entry.view.status, statusBadge(i ? i.status : "uploaded"));
    const chunks = i ? i.chunks_processed : null;
    const chunkCount = chunks === null || chunks === undefined ? null : `${chunks} chunk${chunks === 1 ? "" : "s"}`;
    mount(entry.view.detail, chunkCount,
      i && i.error ? h("span", { class: "error-text" }, i.error) : null);
  }

  async function uploadOne(entry) {
    const { view } = entry;
    mount(view.status, statusBadge("uploading"));
    try {
      const created = await uploadFile(entry.file, entry.destination, (fraction) => {
        const value = Math.round(fraction * 100);
        view.progress.value = value;
        mount(view.percent, `${value}%`);
      });
      entry.workflowId = created.workflow_id;
      mount(view.status, statusBadge("pending"));
      // Uploaded: the name now opens the document.
      mount(view.name, h("a", { href: documentHref(created.document_id) }, clipped(entry.file.name, 80)));
      if (context.isCurrent()) await entry.uploaded();
      restartPolling();
    } catch (error) {
      mount(view.status, statusBadge("failed"));
      mount(view.detail, h("span", { class: "error-text", role: "alert" }, error.message || String(error)));
    }
  }

  /**
   * Upload `files` to `destination` (a folder's `{path_part_id}` or a document's `{document_id}`), each with its
   * progress in `list`; `uploaded()` shows what an upload changed, then its ingestion is followed live.
   */
  function startUploads(files, destination, list, uploaded) {
    const entries = files.map((file) => ({ file, destination, uploaded, view: uploadRow(file), workflowId: null,
                                           ingestion: null }));
    entries.forEach((entry) => { uploads.push(entry); list.appendChild(entry.view.row); });
    eachLimited(entries, PARALLEL_UPLOADS, uploadOne);
  }

  acceptFiles(dropZone, fileInput,
    (files) => startUploads(files, { path_part_id: folder.path_part_id }, uploadList, loadContents));

  async function refreshUploads() {
    const watched = uploads.filter((u) => u.workflowId && (!u.ingestion || OPEN_INGESTION.has(u.ingestion.status)));
    const before = signatureOf(watched.map((u) => u.ingestion));
    await Promise.all(watched.map(async (entry) => {
      entry.ingestion = await cache.detail(entry.workflowId);
      showIngestion(entry);
    }));
    return { changed: before !== signatureOf(watched.map((u) => u.ingestion)),
             active: watched.some((u) => !u.ingestion || OPEN_INGESTION.has(u.ingestion.status)) };
  }

  // Document panel --------------------------------------------------------------------------------------------
  let documentVersions = [];
  let activeVersionId = null;
  let versionsSignature = null;
  const versionsArea = h("div", {});
  const documentConfirm = h("div", { class: "confirm-area" });
  // Built once: reloading the panel after an upload keeps its progress and ingestion in view.
  const versionInput = h("input", { id: "upload-version", type: "file", class: "drop-input" });
  const versionUploads = h("ul", { class: "upload-list", "aria-label": "Version uploads" });
  const versionZone = h("div", { class: "drop-zone version-drop-zone" },
    h("label", { for: "upload-version" }, "Upload a new version"),
    h("p", { class: "muted" }, "Drop a file here, or choose it with this control: it becomes the active version "
      + "and is ingested; the earlier versions stay listed."),
    versionInput, versionUploads);
  if (documentId) {
    acceptFiles(versionZone, versionInput, (files) => {
      // A version is one file: of several dropped, the first.
      if (files.length > 1) notify(["A new version is one file: uploading “", userText(files[0].name), "” only."]);
      startUploads(files.slice(0, 1), { document_id: documentId }, versionUploads,
        () => Promise.all([loadDocument(), loadContents()]));
    });
  }

  async function loadDocument() {
    let documentBody;
    try {
      documentBody = await get(`/v1/documents/${encodeURIComponent(documentId)}`);
    } catch (error) {
      const missing = [404, 422].includes(error.status);
      mount(documentArea, h("h2", { id: "document-title" }, missing ? "Document not found" : "Document"),
        missing ? h("p", { class: "error-box", role: "alert" }, "No document with this id exists in your tenant, "
          + "or you are not allowed to see it.") : errorBox(error));
      return;
    }
    documentVersions = (await get("/v1/document_versions", { document_id: documentId, limit: 100 })).items.reverse();
    activeVersionId = documentBody.active_version_id;
    const download = documentBody.active_version.asset_s3_url;
    const deleteButton = h("button", { type: "button", class: "danger" }, "Delete document");
    deleteButton.addEventListener("click", () => askToDelete(documentConfirm,
      { kind: "document", id: documentBody.id, name: documentBody.name }, deleteButton));
    mount(documentArea,
      h("div", { class: "panel-head" },
        h("h2", { id: "document-title" }, clipped(documentBody.name, 120)),
        h("div", { class: "panel-actions" }, documentBody.can_write ? deleteButton : null,
          h("a", { href: `${folderHref(folder.id, rootId)}`, class: "close-link" }, "Close document"))),
      documentConfirm,
      facts([
        ["Path", clipped(documentBody.materialized_path, 200)],
        ["Type", `${documentBody.document_type} · ${documentBody.document_origin}`],
        ["Active version", `v${documentBody.active_version.version}`],
        ["Created", time(documentBody.created_at)],
        ["File", download ? h("a", { href: download, target: "_blank", rel: "noopener noreferrer" },
          "Download the active version") : h("span", { class: "muted" }, "No file stored")],
      ]),
      h("h3", {}, "Versions"),
      versionsArea,
      documentBody.can_write ? versionZone : null);
    versionsSignature = null; // the versions or the active one may have changed
    await refreshVersions();
  }

  async function refreshVersions() {
    const details = await Promise.all(documentVersions.map((v) => cache.detail(workflowIdOf(v.id))));
    const byVersion = new Map(documentVersions.map((v, index) => [v.id, details[index]]));
    const signature = signatureOf(details);
    const changed = signature !== versionsSignature;
    versionsSignature = signature;
    if (changed && context.isCurrent()) {
      mount(versionsArea, table("Versions", [
        { label: "Version", class: "version", cell: (v) => (v.id === activeVersionId
          ? [`v${v.version} `, h("span", { class: "badge active-version" }, "active")] : `v${v.version}`) },
        { label: "Uploaded", cell: (v) => time(v.created_at) },
        { label: "File", cell: (v) => (v.asset_s3_url ? h("a", { href: v.asset_s3_url, target: "_blank",
                                                            rel: "noopener noreferrer" }, `Download v${v.version}`)
          : h("span", { class: "muted" }, "—")) },
        ...ingestionColumns((v) => byVersion.get(v.id), act),
      ], documentVersions, "No versions."));
    }
    return { changed, active: details.some((d) => d && OPEN_INGESTION.has(d.status)) };
  }

  // Deletes ---------------------------------------------------------------------------------------------------
  const folderConfirm = h("div", { class: "confirm-area" });
  const confirmAreas = [folderConfirm, contentsConfirm, documentConfirm];
  const parentHref = ancestors.length ? folderHref(ancestors[ancestors.length - 1].id, rootId) : "#/documents";

  /** Confirm, then delete `{kind: "folder"|"document", id, name}`; the page then shows what is left. */
  function askToDelete(area, { kind, id, name }, opener) {
    confirmAreas.forEach((other) => mount(other)); // one question at a time
    const question = kind === "folder" ? ["Delete the folder “", userText(name), "” and everything in it?"]
      : ["Delete the document “", userText(name), "” with all its versions and their ingestions?"];
    confirmInPage(area, {
      question,
      confirmLabel: `Delete ${kind}`,
      opener,
      remove: async () => {
        await api("DELETE", `/v1/${kind === "folder" ? "folders" : "documents"}/${encodeURIComponent(id)}`);
        notify([kind === "folder" ? "Folder “" : "Document “", userText(name), "” deleted."]);
        if (kind === "folder" && id === folder.id) {
          window.location.hash = parentHref;
        } else if (kind === "document" && id === documentId) {
          window.location.hash = folderHref(folder.id, rootId); // closes its panel
        } else {
          mount(area);
          await loadContents();
          contentsTitle.focus();
          restartPolling(); // its ingestions are gone too
        }
      },
    });
  }

  const deleteFolderButton = folder.can_write && folder.parent_path_part_id
    ? h("button", { type: "button", class: "danger" }, "Delete this folder") : null;
  if (deleteFolderButton) {
    deleteFolderButton.addEventListener("click", () => askToDelete(folderConfirm,
      { kind: "folder", id: folder.id, name: folder.name }, deleteFolderButton));
  }

  // Tenant ingestions -----------------------------------------------------------------------------------------
  const documentNames = new Map();
  let ingestionsSignature = null;
  async function nameOf(id) {
    if (!documentNames.has(id)) {
      documentNames.set(id, get(`/v1/documents/${encodeURIComponent(id)}`).then((d) => d.name, () => null));
    }
    return documentNames.get(id);
  }

  async function refreshIngestions() {
    const page = await get("/v1/workflows/document_versions",
      { limit: INGESTIONS_PAGE, offset: state.ingestionsOffset || undefined });
    const details = await Promise.all(page.items.map((item) => cache.detail(item.workflow_id,
      item.last_state_update_timestamp)));
    const names = await Promise.all(page.items.map((s) => nameOf(s.document_id)));
    const rows = page.items.map((s, index) => ({ ...s, name: names[index], detail: details[index] || s }));
    const signature = signatureOf(rows.map((r) => r.detail)) + page.total + state.ingestionsOffset;
    const changed = signature !== ingestionsSignature;
    ingestionsSignature = signature;
    if (changed && context.isCurrent()) {
      mount(ingestionsArea,
        table("All ingestions", [
          { label: "Document", cell: (r) => h("a", { href: documentHref(r.document_id) },
            r.name === null ? shortId(r.document_id) : clipped(r.name, 60)) },
          { label: "Version", cell: (r) => shortId(r.document_version_id) },
          ...ingestionColumns((r) => r.detail, act),
        ], rows, "No document has been ingested yet."),
        page.total > page.limit ? pager(page, (offset) => { state.ingestionsOffset = offset; restartPolling(); },
          "ingestions") : null);
    }
    return { changed, active: rows.some((r) => OPEN_INGESTION.has(r.detail.status)) };
  }

  // Live refresh: fast while an upload or an ingestion on screen is open, backing off once all ended. --------
  async function refresh() {
    const results = await Promise.all([refreshUploads(), documentArea ? refreshVersions() : null, refreshIngestions()]);
    const seen = results.filter(Boolean);
    return { changed: seen.some((r) => r.changed), active: seen.some((r) => r.active) };
  }
  let stop = null;
  let restarts = 0;
  /** Refresh now (an action or an upload just changed something), then keep polling from the fast pace. */
  async function restartPolling() {
    const restart = ++restarts;
    if (stop) stop();
    stop = null;
    await refresh().catch(reportUnexpected);
    // Of restarts that overlap (two uploads finishing together), the last one polls.
    if (restart === restarts && context.isCurrent()) stop = poll(refresh, { fastMs: 1000, slowMs: 30000 });
  }
  context.onLeave(() => stop && stop());

  mount(container,
    heading("Documents", deleteFolderButton),
    breadcrumbs(folder, ancestors, rootId),
    folderConfirm,
    documentArea,
    actionStatus,
    folder.can_write === false
      ? h("p", { class: "muted" }, "You may read this folder: uploads and new folders need write access to it.")
      : h("div", { class: "documents-tools" },
        h("section", { class: "card", "aria-labelledby": "upload-title" },
          h("h2", { id: "upload-title" }, "Upload to ", userText(folder.materialized_path)), dropZone, uploadList),
        h("section", { class: "card", "aria-labelledby": "new-folder-title" },
          h("h2", { id: "new-folder-title" }, "New folder"), folderForm)),
    h("section", { "aria-labelledby": "contents-title" }, contentsTitle, contentsConfirm, contentsArea),
    h("section", { "aria-labelledby": "ingestions-title" },
      h("h2", { id: "ingestions-title" }, "Ingestions"),
      h("p", { class: "muted" }, context.isAdmin ? "Every document version's ingestion in this tenant, newest first."
        : "The ingestions of the documents you may read, newest first."),
      ingestionsArea));

  await Promise.all([loadContents(), documentArea ? loadDocument() : null, refreshIngestions().catch((error) => {
    mount(ingestionsArea, errorBox(error));
  })]);
  restartPolling();
}
