//! The merged stream, checked against a real reflector store: what the store holds after
//! the merged events is what the namespaces hold.

use std::collections::BTreeMap;

use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::Event;

use super::*;

fn cm(namespace: &str, name: &str, version: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("v".to_owned(), version.to_owned())])),
        ..ConfigMap::default()
    }
}

/// A merge of two namespaces ("a" = source 0, "b" = source 1) feeding a real store.
struct Harness {
    merge: Merge<ConfigMap>,
    writer: Writer<ConfigMap>,
    store: Store<ConfigMap>,
    emitted: Vec<Event<ConfigMap>>,
}

impl Harness {
    fn new() -> Self {
        let (store, writer) = reflector::store();
        Self {
            merge: Merge::new(2),
            writer,
            store,
            emitted: Vec::new(),
        }
    }

    fn push(&mut self, source: usize, event: Event<ConfigMap>) {
        for out in self.merge.push(source, event) {
            self.writer.apply_watcher_event(&out);
            self.emitted.push(out);
        }
    }

    /// A complete list of `source`: Init, one InitApply per object, InitDone.
    fn list(&mut self, source: usize, objects: &[ConfigMap]) {
        self.push(source, Event::Init);
        for object in objects {
            self.push(source, Event::InitApply(object.clone()));
        }
        self.push(source, Event::InitDone);
    }

    fn ready(&self) -> bool {
        self.store.wait_until_ready().now_or_never().is_some()
    }

    /// `namespace/name=version` of everything in the store, sorted.
    fn contents(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .store
            .state()
            .iter()
            .map(|o| {
                let version = o.data.as_ref().and_then(|d| d.get("v")).cloned();
                format!(
                    "{}/{}={}",
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                    version.unwrap_or_default()
                )
            })
            .collect();
        all.sort();
        all
    }

    fn count(&self, wanted: fn(&Event<ConfigMap>) -> bool) -> usize {
        self.emitted.iter().filter(|e| wanted(e)).count()
    }
}

#[test]
fn init_done_only_once_every_namespace_has_listed() {
    let mut h = Harness::new();
    h.list(0, &[cm("a", "one", "1")]);
    assert!(!h.ready(), "ready before namespace b listed");
    assert_eq!(h.count(|e| matches!(e, Event::InitDone)), 0);
    h.list(1, &[cm("b", "two", "1")]);
    assert!(h.ready());
    assert_eq!(h.contents(), ["a/one=1", "b/two=1"]);
    assert_eq!(h.count(|e| matches!(e, Event::Init)), 1, "one Init");
    assert_eq!(h.count(|e| matches!(e, Event::InitDone)), 1, "one InitDone");
    assert!(matches!(h.emitted.first(), Some(Event::Init)));
}

#[test]
fn a_namespace_with_nothing_still_counts_as_listed() {
    let mut h = Harness::new();
    h.list(1, &[]);
    assert!(!h.ready());
    h.list(0, &[]);
    assert!(h.ready());
    assert!(h.contents().is_empty());
}

#[test]
fn a_relist_of_one_namespace_keeps_the_others_objects() {
    let mut h = Harness::new();
    h.list(0, &[cm("a", "one", "1"), cm("a", "gone", "1")]);
    h.list(1, &[cm("b", "two", "1")]);
    // Namespace a's watch desynchronised and lists again: "gone" was deleted meanwhile.
    h.list(0, &[cm("a", "one", "2"), cm("a", "new", "1")]);
    assert_eq!(h.contents(), ["a/new=1", "a/one=2", "b/two=1"]);
    assert_eq!(
        h.count(|e| matches!(e, Event::InitDone)),
        1,
        "no second InitDone"
    );
    assert_eq!(h.count(|e| matches!(e, Event::Init)), 1, "no second Init");
    let deleted: Vec<String> = h
        .emitted
        .iter()
        .filter_map(|e| match e {
            Event::Delete(o) => Some(o.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        ["gone"],
        "the vanished object is deleted, with its object"
    );
}

#[test]
fn live_changes_after_the_lists_pass_through() {
    let mut h = Harness::new();
    h.list(0, &[cm("a", "one", "1")]);
    h.list(1, &[cm("b", "two", "1")]);
    h.push(1, Event::Apply(cm("b", "three", "1")));
    h.push(0, Event::Delete(cm("a", "one", "1")));
    h.push(1, Event::Apply(cm("b", "two", "2")));
    assert_eq!(h.contents(), ["b/three=1", "b/two=2"]);
    // A later re-list of b does not resurrect a's deleted object or drop b's new one.
    h.list(1, &[cm("b", "two", "2"), cm("b", "three", "1")]);
    assert_eq!(h.contents(), ["b/three=1", "b/two=2"]);
}

#[test]
fn changes_while_another_namespace_still_lists_reach_the_store() {
    let mut h = Harness::new();
    h.list(0, &[cm("a", "one", "1"), cm("a", "doomed", "1")]);
    // a watches already while b still lists: these must not be lost in the swap.
    h.push(1, Event::Init);
    h.push(0, Event::Apply(cm("a", "later", "1")));
    h.push(0, Event::Apply(cm("a", "one", "2")));
    h.push(0, Event::Delete(cm("a", "doomed", "1")));
    h.push(1, Event::InitApply(cm("b", "two", "1")));
    h.push(1, Event::InitDone);
    assert!(h.ready());
    assert_eq!(h.contents(), ["a/later=1", "a/one=2", "b/two=1"]);
}

#[test]
fn a_first_list_restarted_midway_leaves_nothing_stale() {
    let mut h = Harness::new();
    h.push(0, Event::Init);
    h.push(0, Event::InitApply(cm("a", "partial", "1")));
    // The list failed and starts over; "partial" was deleted in between.
    h.push(0, Event::Init);
    h.push(0, Event::InitApply(cm("a", "one", "1")));
    h.push(0, Event::InitDone);
    h.list(1, &[cm("b", "two", "1")]);
    assert!(h.ready());
    assert_eq!(h.contents(), ["a/one=1", "b/two=1"]);
}

#[test]
fn deleted_then_recreated_before_ready_stays() {
    let mut h = Harness::new();
    h.list(0, &[cm("a", "phoenix", "1")]);
    h.push(0, Event::Delete(cm("a", "phoenix", "1")));
    h.push(0, Event::Apply(cm("a", "phoenix", "2")));
    h.list(1, &[]);
    assert_eq!(h.contents(), ["a/phoenix=2"]);
}

#[test]
fn unknown_sources_are_ignored() {
    let mut merge = Merge::<ConfigMap>::new(1);
    assert!(merge.push(5, Event::Init).is_empty());
}

#[test]
fn the_stream_merges_and_passes_errors_through() {
    let a = futures::stream::iter(vec![
        Ok(Event::Init),
        Ok(Event::InitApply(cm("a", "one", "1"))),
        Err("boom"),
        Ok(Event::InitDone),
    ]);
    let b = futures::stream::iter(vec![Ok(Event::Init), Ok(Event::InitDone)]);
    let out: Vec<Result<Event<ConfigMap>, &str>> =
        futures::executor::block_on(merge(vec![a, b]).collect());
    assert_eq!(out.iter().filter(|e| e.is_err()).count(), 1, "the error");
    let done = out
        .iter()
        .filter(|e| matches!(e, Ok(Event::InitDone)))
        .count();
    assert_eq!(done, 1, "one InitDone for both");
    assert!(matches!(out.last(), Some(Ok(Event::InitDone))), "{out:?}");
}
