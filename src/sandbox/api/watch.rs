//! Watch streams: newline-delimited `WatchEvent`s, as kube-apiserver sends them.
//!
//! Without a `resourceVersion` (or with "0") the stream starts with ADDED for every current
//! object; with one, it replays history after it or, when that history is gone, sends one
//! `ERROR` event carrying a 410 `Expired` Status (kube-apiserver's watch cache does the same:
//! once a watch is accepted, its errors travel as events, and kube-runtime relists only on such
//! an event). With selectors, an object
//! that stops matching is sent as DELETED and one that starts matching as ADDED. Bookmarks carry
//! the latest revision seen; `sendInitialEvents` ends the initial burst with the
//! `k8s.io/initial-events-end` bookmark.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::convert::to_external;
use super::{App, Req};
use crate::sandbox::resources::ResourceDef;
use crate::sandbox::selector::{FieldSelector, LabelSelector};
use crate::sandbox::status::ApiError;
use crate::sandbox::store::{Change, ChangeKind};

/// Interval between bookmarks when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Longest watch when the client sets no `timeoutSeconds` (kube-apiserver picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct WatchState {
    def: &'static ResourceDef,
    ns: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
    filtered: bool,
    visible: HashSet<(String, String)>,
    queue: VecDeque<Bytes>,
    rx: broadcast::Receiver<Arc<Change>>,
    deadline: Instant,
    bookmarks: bool,
    next_bookmark: Instant,
    seen_rv: u64,
    cancel: CancellationToken,
    /// Fires when the sandbox closes every open watch at once.
    closer: CancellationToken,
    done: bool,
    /// `includeObject` when the client asked for Table rows (`kubectl get -w`).
    table: Option<String>,
}

fn line(ty: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": ty, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

impl WatchState {
    fn event(&self, ty: &str, obj: &Value) -> Bytes {
        match &self.table {
            Some(include) => {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
                line(
                    ty,
                    &super::table::table(self.def, std::slice::from_ref(obj), include, meta),
                )
            }
            None => line(ty, obj),
        }
    }

    fn matches(&self, obj: &Value) -> bool {
        self.label.matches_object(obj) && self.field.matches(obj)
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": self.seen_rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta}),
        )
    }

    fn push_change(&mut self, change: &Change) {
        self.seen_rv = self.seen_rv.max(change.rv);
        if change.storage != self.def.storage {
            return;
        }
        if let Some(ns) = &self.ns
            && &change.namespace != ns
        {
            return;
        }
        if let Some(pinned) = self.field.pinned_name()
            && change
                .object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                != Some(pinned)
        {
            return;
        }
        let obj = to_external(self.def, (*change.object).clone());
        if !self.filtered {
            let ev = self.event(change.kind.as_str(), &obj);
            self.queue.push_back(ev);
            return;
        }
        let key = crate::sandbox::store::ns_name(&obj);
        let matches = self.matches(&obj);
        let was = self.visible.contains(&key);
        let ty = match (change.kind, matches, was) {
            (ChangeKind::Deleted, _, true) | (ChangeKind::Deleted, true, false) => {
                self.visible.remove(&key);
                "DELETED"
            }
            (ChangeKind::Deleted, false, false) => return,
            (_, true, true) => "MODIFIED",
            (_, true, false) => {
                self.visible.insert(key);
                "ADDED"
            }
            (_, false, true) => {
                self.visible.remove(&key);
                "DELETED"
            }
            (_, false, false) => return,
        };
        let ev = self.event(ty, &obj);
        self.queue.push_back(ev);
    }

    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(b) = self.queue.pop_front() {
                return Some((Ok(b), self));
            }
            if self.done {
                return None;
            }
            let wake = if self.bookmarks {
                self.next_bookmark.min(self.deadline)
            } else {
                self.deadline
            };
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = self.closer.cancelled() => return None,
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= self.deadline {
                        self.done = true;
                    } else {
                        let b = self.bookmark(false);
                        self.queue.push_back(b);
                        self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    }
                }
                r = self.rx.recv() => match r {
                    Ok(change) => self.push_change(&change),
                    // Too slow a reader: end the stream; the client re-watches or relists.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.done = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// Whether a request resumes a watch from a `resourceVersion` (rather than listing first).
pub(crate) fn resumes(uri: &http::Uri) -> bool {
    let mut rv = false;
    let mut initial = false;
    for kv in uri.query().unwrap_or_default().split('&') {
        match kv.split_once('=') {
            Some(("resourceVersion", v)) => rv = !v.is_empty() && v != "0",
            Some(("sendInitialEvents", v)) => {
                initial = matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
            }
            _ => {}
        }
    }
    rv && !initial
}

/// A watch that ends at once with one `ERROR` event carrying `err`'s Status.
fn error_stream(err: &ApiError) -> Response<Body> {
    let body = line("ERROR", &err.to_status());
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Starts a watch (`?watch=true`).
pub(crate) fn watch(
    app: &Arc<App>,
    req: &Req,
    def: &'static ResourceDef,
    ns: Option<&str>,
    label: LabelSelector,
    field: FieldSelector,
) -> Result<Response<Body>, ApiError> {
    let ns = ns.filter(|n| !n.is_empty()).map(String::from);
    let rv = match req.q("resourceVersion") {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let send_initial = req.flag("sendInitialEvents");
    let bookmarks = req.flag("allowWatchBookmarks");
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(Duration::from_secs(3600))
        .min(req.close_watch_after.unwrap_or(Duration::MAX));
    let filtered =
        !label.is_empty() || field.pinned_name().is_some() || req.q("fieldSelector").is_some();
    let store = &app.shared.store;
    let mut state;
    let (initial, replay, start_rv, rx) = if rv.is_none() || send_initial {
        let (items, current, rx) = store.list_and_subscribe(def.storage, ns.as_deref());
        (items, Vec::new(), current, rx)
    } else {
        let from = rv.unwrap_or_default();
        if req.gone {
            // Hostile mode: as if the history after `from` had just been compacted away.
            return Ok(error_stream(&ApiError::gone(from, from + 1)));
        }
        match store.watch_from(rv) {
            Ok((replay, current, rx)) => (Vec::new(), replay, current, rx),
            Err(e) if e.code == 410 => return Ok(error_stream(&e)),
            Err(e) => return Err(e),
        }
    };
    state = WatchState {
        def,
        ns,
        label,
        field,
        filtered,
        visible: HashSet::new(),
        queue: VecDeque::new(),
        rx,
        deadline: Instant::now() + timeout,
        bookmarks,
        next_bookmark: Instant::now() + BOOKMARK_EVERY,
        seen_rv: rv.unwrap_or(start_rv),
        cancel: app.cancel.clone(),
        closer: app.shared.watch_closer(),
        done: false,
        table: req
            .wants_table()
            .then(|| req.q("includeObject").unwrap_or("Metadata").to_string()),
    };
    if rv.is_some() && !send_initial && state.filtered {
        // Objects the client already has: those matching now (history keeps no old states).
        let (items, _) = store.list(def.storage, state.ns.as_deref());
        for o in items {
            let e = to_external(def, Arc::unwrap_or_clone(o));
            if state.matches(&e) {
                state.visible.insert(crate::sandbox::store::ns_name(&e));
            }
        }
    }
    for o in initial {
        let e = to_external(def, Arc::unwrap_or_clone(o));
        if state.matches(&e) {
            state.visible.insert(crate::sandbox::store::ns_name(&e));
            let ev = state.event("ADDED", &e);
            state.queue.push_back(ev);
        }
    }
    if !replay.is_empty() || rv.is_none() || send_initial {
        state.seen_rv = start_rv.max(state.seen_rv);
    }
    for change in replay {
        state.push_change(&change);
    }
    if send_initial && bookmarks {
        let b = state.bookmark(true);
        state.queue.push_back(b);
    }
    let stream = futures::stream::unfold(state, WatchState::next);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
