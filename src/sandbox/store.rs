//! The object store: every object as JSON, one global `resourceVersion` counter and a bounded
//! history of changes that watches replay from.
//!
//! Like etcd behind kube-apiserver, each write bumps the revision and emits one change; a watch
//! that asks for a revision older than the history answers 410 Gone so the client relists.
//! Changes are broadcast while the lock is held, so a watch that subscribes under the same lock
//! sees every change after its snapshot exactly once. A paged list is served from one snapshot
//! taken at its first page, as etcd's MVCC serves kube-apiserver: its pages add up to the state
//! at one revision, so a watch from that revision misses nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::resources::ResourceDef;
use super::status::ApiError;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was removed.
    Deleted,
}

impl ChangeKind {
    /// The watch event type for this change.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in the history.
#[derive(Debug)]
pub(crate) struct Change {
    /// Revision of the write.
    pub rv: u64,
    /// Storage bucket of the object.
    pub storage: &'static str,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (before it, for deletions, with the new revision).
    pub object: Obj,
}

type Key = (String, String);

/// How long a paged list's snapshot serves its `continue` tokens: kube-apiserver compacts etcd
/// every 5 minutes, after which a token answers 410 Expired.
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
/// Most snapshots kept at once; the oldest goes first.
const MAX_SNAPSHOTS: usize = 64;

/// The rest of a paged list, as it was at its first page.
struct Snapshot {
    rv: u64,
    /// Objects after the first page, in key order.
    items: Vec<(Key, Obj)>,
    taken: Instant,
}

/// Where a paged list goes on: its snapshot and the last key served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Continue {
    /// The snapshot's number.
    pub snapshot: u64,
    /// The last key already served.
    pub after: Key,
}

/// One page of a list: objects, the revision they show, and where the next page starts.
pub(crate) type Page = (Vec<Obj>, u64, Option<Continue>);

/// A stored object; shared between the store, its history and readers, so lists are cheap.
pub(crate) type Obj = Arc<Value>;

struct Inner {
    rv: u64,
    bucket_rv: HashMap<&'static str, u64>,
    buckets: HashMap<&'static str, BTreeMap<Key, Obj>>,
    history: VecDeque<Arc<Change>>,
    truncated_at: u64,
    next_uid: u64,
    snapshots: BTreeMap<u64, Snapshot>,
    next_snapshot: u64,
}

/// Replayed changes, the current revision and a receiver for what follows.
pub(crate) type WatchStart = (Vec<Arc<Change>>, u64, broadcast::Receiver<Arc<Change>>);

/// Shared state of the sandbox API.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Change>>,
    changed: Notify,
    history_cap: usize,
    uid_prefix: String,
}

/// Current time as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Current time with microseconds, as `MicroTime` fields expect.
pub(crate) fn now_micro() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `namespace` and `name` of an object.
pub(crate) fn ns_name(obj: &Value) -> (String, String) {
    (
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn random_suffix(len: usize) -> String {
    // Kubernetes' alphabet for generated names: no vowels, no confusable digits.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Store {
    /// An empty store keeping `history_cap` changes for watches.
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(history_cap.max(1024));
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                bucket_rv: HashMap::new(),
                buckets: HashMap::new(),
                history: VecDeque::new(),
                truncated_at: 1,
                next_uid: 1,
                snapshots: BTreeMap::new(),
                next_snapshot: 1,
            }),
            tx,
            changed: Notify::new(),
            history_cap,
            uid_prefix: format!("{:08x}", rand::random::<u32>()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (writes are single inserts).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes when anything changes (controllers wait on it).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The latest revision.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Revision of the last write to each of `storages` (lets a controller skip a pass when
    /// nothing it reads has changed).
    pub fn bucket_revisions(&self, storages: &[&str]) -> Vec<u64> {
        let inner = self.lock();
        storages
            .iter()
            .map(|s| inner.bucket_rv.get(s).copied().unwrap_or(0))
            .collect()
    }

    /// Runs `f` with exclusive access, so several reads and writes happen atomically.
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Txn<'_>) -> R) -> R {
        let mut guard = self.lock();
        let mut txn = Txn {
            inner: &mut guard,
            store: self,
            wrote: false,
        };
        let out = f(&mut txn);
        let wrote = txn.wrote;
        drop(guard);
        if wrote {
            self.changed.notify_waiters();
            self.changed.notify_one();
        }
        out
    }

    /// One object, if present.
    pub fn get(&self, storage: &str, ns: &str, name: &str) -> Option<Obj> {
        self.transaction(|t| t.get_shared(storage, ns, name))
    }

    /// Every object of a bucket (in one namespace, or all), with the list revision.
    pub fn list(&self, storage: &str, ns: Option<&str>) -> (Vec<Obj>, u64) {
        self.transaction(|t| (t.list(storage, ns), t.inner.rv))
    }

    /// Up to `limit` objects of a bucket (one namespace or all) that `keep` accepts, in key
    /// order. A first page that leaves objects out snapshots the rest, and every `continue` from
    /// it is served from that snapshot; a snapshot gone (too old, or pushed out) is 410 Expired.
    ///
    /// # Errors
    /// 410 Expired for a `continue` whose snapshot is gone.
    pub fn page(
        &self,
        storage: &str,
        ns: Option<&str>,
        from: Option<&Continue>,
        mut keep: impl FnMut(&Value) -> bool,
        limit: usize,
    ) -> Result<Page, ApiError> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner
            .snapshots
            .retain(|_, s| now.duration_since(s.taken) < SNAPSHOT_TTL);
        if let Some(from) = from {
            let snapshot = inner
                .snapshots
                .get(&from.snapshot)
                .ok_or_else(ApiError::continue_expired)?;
            let start = snapshot.items.partition_point(|(k, _)| k <= &from.after);
            let (out, last) = take_page(
                snapshot.items[start..].iter().map(|(k, v)| (k, v)),
                &mut keep,
                limit,
            );
            let next = last.map(|after| Continue {
                snapshot: from.snapshot,
                after,
            });
            return Ok((out, snapshot.rv, next));
        }
        let rv = inner.rv;
        let Some(bucket) = inner.buckets.get(storage) else {
            return Ok((Vec::new(), rv, None));
        };
        let in_ns = |k: &&Key| ns.is_none_or(|n| n == k.0);
        let (out, last) = take_page(bucket.iter().filter(|(k, _)| in_ns(k)), &mut keep, limit);
        let Some(after) = last else {
            return Ok((out, rv, None));
        };
        let items: Vec<(Key, Obj)> = bucket
            .range((
                std::ops::Bound::Excluded(after.clone()),
                std::ops::Bound::Unbounded,
            ))
            .filter(|(k, _)| in_ns(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let snapshot = inner.next_snapshot;
        inner.next_snapshot += 1;
        inner.snapshots.insert(
            snapshot,
            Snapshot {
                rv,
                items,
                taken: now,
            },
        );
        while inner.snapshots.len() > MAX_SNAPSHOTS {
            inner.snapshots.pop_first();
        }
        Ok((out, rv, Some(Continue { snapshot, after })))
    }

    /// Creates an object (see [`Txn::create`]).
    pub fn create(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.transaction(|t| t.create(def, ns, obj))
    }

    /// Read-modify-write of one object (see [`Txn::update_with`]).
    pub fn update_with(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        self.transaction(|t| t.update_with(def, ns, name, f))
    }

    /// Removes an object now (see [`Txn::remove`]).
    pub fn remove(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.transaction(|t| t.remove(def, ns, name, uid))
    }

    /// A consistent snapshot of a bucket plus a receiver for every later change.
    pub fn list_and_subscribe(
        &self,
        storage: &str,
        ns: Option<&str>,
    ) -> (Vec<Obj>, u64, broadcast::Receiver<Arc<Change>>) {
        let mut inner = self.lock();
        let rx = self.tx.subscribe();
        let txn = Txn {
            inner: &mut inner,
            store: self,
            wrote: false,
        };
        let items = txn.list(storage, ns);
        let rv = txn.inner.rv;
        (items, rv, rx)
    }

    /// Changes after `rv` still in the history plus a receiver for later ones, or 410 Gone.
    pub fn watch_from(&self, rv: Option<u64>) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let start = rv.unwrap_or(inner.rv);
        if start < inner.truncated_at {
            return Err(ApiError::gone(start, inner.truncated_at));
        }
        let replay = inner
            .history
            .iter()
            .filter(|c| c.rv > start)
            .cloned()
            .collect();
        Ok((replay, inner.rv, rx))
    }
}

/// The first `limit` objects `keep` accepts, and the last key served when more remain.
fn take_page<'a>(
    entries: impl Iterator<Item = (&'a Key, &'a Obj)>,
    keep: &mut impl FnMut(&Value) -> bool,
    limit: usize,
) -> (Vec<Obj>, Option<Key>) {
    let mut out = Vec::new();
    let mut last: Option<&Key> = None;
    for (k, v) in entries.filter(|(_, v)| keep(v)) {
        if out.len() == limit {
            return (out, last.cloned());
        }
        out.push(v.clone());
        last = Some(k);
    }
    (out, None)
}

/// Exclusive access to the store for the duration of a transaction.
pub(crate) struct Txn<'a> {
    inner: &'a mut Inner,
    store: &'a Store,
    wrote: bool,
}

impl Txn<'_> {
    fn record(&mut self, storage: &'static str, ns: &str, kind: ChangeKind, object: Obj) {
        let change = Arc::new(Change {
            rv: self.inner.rv,
            storage,
            namespace: ns.to_string(),
            kind,
            object,
        });
        self.inner.bucket_rv.insert(storage, change.rv);
        self.inner.history.push_back(change.clone());
        while self.inner.history.len() > self.store.history_cap {
            if let Some(old) = self.inner.history.pop_front() {
                self.inner.truncated_at = old.rv;
            }
        }
        // No receiver is not an error: nobody watches yet.
        let _ = self.store.tx.send(change);
        self.wrote = true;
    }

    fn bump(&mut self) -> u64 {
        self.inner.rv += 1;
        self.inner.rv
    }

    /// One object, if present.
    pub fn get(&self, storage: &str, ns: &str, name: &str) -> Option<&Value> {
        self.inner
            .buckets
            .get(storage)
            .and_then(|b| b.get(&(ns.to_string(), name.to_string())))
            .map(|o| o.as_ref())
    }

    /// One object as a shared handle, if present.
    pub fn get_shared(&self, storage: &str, ns: &str, name: &str) -> Option<Obj> {
        self.inner
            .buckets
            .get(storage)
            .and_then(|b| b.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    /// Clones of every object of a bucket, in one namespace or all.
    pub fn list(&self, storage: &str, ns: Option<&str>) -> Vec<Obj> {
        self.inner
            .buckets
            .get(storage)
            .map(|b| {
                b.iter()
                    .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates an object: fills uid, creationTimestamp, resourceVersion, generation and a name
    /// from `generateName`; 409 if the name is taken, 422 if it is not a DNS subdomain.
    pub fn create(
        &mut self,
        def: &'static ResourceDef,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        if def.namespaced && self.get("namespaces", "", ns).is_none() {
            return Err(ApiError::not_found(
                super::resources::well_known::namespaces(),
                ns,
            ));
        }
        if def.namespaced
            && self
                .get("namespaces", "", ns)
                .and_then(|n| n.pointer("/metadata/deletionTimestamp"))
                .is_some()
        {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    def.qualified()
                ),
                details: None,
            });
        }
        let mut name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    def,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
            loop {
                name = format!("{prefix}{}", random_suffix(5));
                if self.get(def.storage, ns, &name).is_none() {
                    break;
                }
            }
        }
        if def.group == "rbac.authorization.k8s.io" {
            // RBAC names are only path segments upstream (`system:basic-user`).
            if name == "." || name == ".." || name.contains(['/', '%']) {
                return Err(ApiError::invalid(
                    def,
                    &name,
                    "metadata.name",
                    "Invalid value: may not contain '/' or '%' and may not be '.' or '..'",
                ));
            }
        } else if !valid_name(&name) {
            return Err(ApiError::invalid(
                def,
                &name,
                "metadata.name",
                "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            ));
        }
        if self.get(def.storage, ns, &name).is_some() {
            return Err(ApiError::already_exists(def, &name));
        }
        let rv = self.bump();
        self.inner.next_uid += 1;
        let uid = format!(
            "{}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            self.store.uid_prefix,
            (self.inner.next_uid >> 16) & 0xffff,
            (self.inner.next_uid >> 4) & 0xfff,
            self.inner.next_uid & 0xfff,
            rand::random::<u64>() & 0xffff_ffff_ffff
        );
        let meta = obj
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})));
        if let Some(Value::Object(m)) = meta {
            m.insert("name".into(), json!(name));
            if def.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(uid));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("managedFields");
            if def.has_spec {
                m.insert("generation".into(), json!(1));
            }
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        self.inner
            .buckets
            .entry(def.storage)
            .or_default()
            .insert((ns.to_string(), name.clone()), Arc::new(obj.clone()));
        let shared = self.get_shared(def.storage, ns, &name).unwrap_or_default();
        self.record(def.storage, ns, ChangeKind::Added, shared);
        Ok(obj)
    }

    /// Read-modify-write: `f` edits a copy; identity fields are restored, the revision bumps
    /// and `generation` follows `.spec`. No write (and no event) when nothing changed.
    pub fn update_with(
        &mut self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let old = self
            .get(def.storage, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        let mut new = old.clone();
        f(&mut new)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        for field in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "resourceVersion",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        if new == old {
            return Ok(old);
        }
        if def.has_spec && new.get("spec") != old.get("spec") {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            new["metadata"]["generation"] = json!(g + 1);
        }
        let rv = self.bump();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.inner
            .buckets
            .entry(def.storage)
            .or_default()
            .insert(key, Arc::new(new.clone()));
        let shared = self.get_shared(def.storage, ns, name).unwrap_or_default();
        self.record(def.storage, ns, ChangeKind::Modified, shared);
        Ok(new)
    }

    /// Removes an object now; with `uid`, only if it is still the same object.
    pub fn remove(
        &mut self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Value, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let current = self
            .get(def.storage, ns, name)
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if let Some(uid) = uid
            && current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Err(ApiError::conflict(def, name));
        }
        let rv = self.bump();
        let removed = self
            .inner
            .buckets
            .get_mut(def.storage)
            .and_then(|b| b.remove(&key))
            .ok_or_else(|| ApiError::not_found(def, name))?;
        let mut obj = Arc::unwrap_or_clone(removed);
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(def.storage, ns, ChangeKind::Deleted, Arc::new(obj.clone()));
        Ok(obj)
    }

    /// Sets `deletionTimestamp` (and the grace period), the only write that may move them.
    pub fn mark_deleting(
        &mut self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        timestamp: String,
        grace: Option<i64>,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let mut obj = self
            .get(def.storage, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        obj["metadata"]["deletionTimestamp"] = json!(timestamp);
        if let Some(g) = grace {
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(g);
        }
        edit(&mut obj);
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.inner
            .buckets
            .entry(def.storage)
            .or_default()
            .insert(key, Arc::new(obj.clone()));
        let shared = self.get_shared(def.storage, ns, name).unwrap_or_default();
        self.record(def.storage, ns, ChangeKind::Modified, shared);
        Ok(obj)
    }

    /// Every uid in the store (the garbage collector's view of live owners).
    pub fn uids(&self) -> std::collections::HashSet<String> {
        self.inner
            .buckets
            .values()
            .flat_map(|b| b.values())
            .filter_map(|v| v.pointer("/metadata/uid").and_then(Value::as_str))
            .map(String::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::resources::well_known;

    fn store_with_ns() -> Store {
        let s = Store::new(4);
        s.create(
            well_known::namespaces(),
            "",
            json!({"metadata": {"name": "shop"}}),
        )
        .unwrap();
        s
    }

    #[test]
    fn a_paged_list_adds_up_to_one_revision_and_an_expired_continue_is_410() {
        let s = store_with_ns();
        let cm = crate::sandbox::resources::find("", "v1", "configmaps").unwrap();
        for name in ["b", "d", "f"] {
            s.create(cm, "shop", json!({"metadata": {"name": name}}))
                .unwrap();
        }
        let names = |page: &[Obj]| -> Vec<String> { page.iter().map(|o| ns_name(o).1).collect() };
        let (first, rv, next) = s.page(cm.storage, Some("shop"), None, |_| true, 2).unwrap();
        assert_eq!(names(&first), ["b", "d"]);
        let next = next.expect("a continue token");
        // Written between the pages: the list shows neither, a watch from `rv` shows both.
        s.create(cm, "shop", json!({"metadata": {"name": "e"}}))
            .unwrap();
        s.remove(cm, "shop", "f", None).unwrap();
        let (rest, rest_rv, more) = s
            .page(cm.storage, Some("shop"), Some(&next), |_| true, 2)
            .unwrap();
        assert_eq!(
            names(&rest),
            ["f"],
            "the state at the first page's revision"
        );
        assert_eq!((rest_rv, more), (rv, None));
        let (replayed, _, _) = s.watch_from(Some(rv)).unwrap();
        assert_eq!(
            replayed.len(),
            2,
            "the watch from that revision sees both writes"
        );
        let gone = Continue {
            snapshot: next.snapshot + 100,
            after: next.after,
        };
        let err = s
            .page(cm.storage, Some("shop"), Some(&gone), |_| true, 2)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (410, "Expired"));
    }

    #[test]
    fn create_fills_metadata_and_rejects_duplicates() {
        let s = store_with_ns();
        let cm = crate::sandbox::resources::find("", "v1", "configmaps").unwrap();
        let a = s
            .create(cm, "shop", json!({"metadata": {"generateName": "j-"}}))
            .unwrap();
        assert!(a["metadata"]["name"].as_str().unwrap().starts_with("j-"));
        assert!(a["metadata"]["uid"].is_string());
        let name = a["metadata"]["name"].as_str().unwrap().to_string();
        let dup = s
            .create(cm, "shop", json!({"metadata": {"name": name}}))
            .unwrap_err();
        assert_eq!(dup.code, 409);
        let missing_ns = s
            .create(cm, "nope", json!({"metadata": {"name": "x"}}))
            .unwrap_err();
        assert_eq!(missing_ns.code, 404);
        let bad = s
            .create(cm, "shop", json!({"metadata": {"name": "Bad_Name"}}))
            .unwrap_err();
        assert_eq!(bad.code, 422);
    }

    #[test]
    fn watch_history_expires_with_gone() {
        let s = store_with_ns();
        let cm = crate::sandbox::resources::find("", "v1", "configmaps").unwrap();
        let start = s.current_rv();
        for i in 0..10 {
            s.create(cm, "shop", json!({"metadata": {"name": format!("c{i}")}}))
                .unwrap();
        }
        assert_eq!(s.watch_from(Some(start)).unwrap_err().code, 410);
        let (replay, _, _) = s.watch_from(Some(s.current_rv() - 2)).unwrap();
        assert_eq!(replay.len(), 2);
    }

    #[test]
    fn generation_follows_spec_only() {
        let s = store_with_ns();
        let d = well_known::deployments();
        s.create(
            d,
            "shop",
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}),
        )
        .unwrap();
        let v = s
            .update_with(d, "shop", "web", |o| {
                o["status"] = json!({"replicas": 1});
                Ok(())
            })
            .unwrap();
        assert_eq!(v["metadata"]["generation"], json!(1));
        let v = s
            .update_with(d, "shop", "web", |o| {
                o["spec"]["replicas"] = json!(2);
                Ok(())
            })
            .unwrap();
        assert_eq!(v["metadata"]["generation"], json!(2));
    }
}
