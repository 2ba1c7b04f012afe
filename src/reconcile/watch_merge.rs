//! One well-formed watcher event stream out of several (one watch per namespace), for one
//! reflector store.
//!
//! A reflector [`Writer`](kube::runtime::reflector::store::Writer) expects the events of ONE
//! watch: `Init`, `InitApply`…, `InitDone` (the store is replaced by what was listed), then
//! `Apply`/`Delete`. Feeding it several namespaces' watches as they come would be wrong: one
//! namespace's `InitDone` (also that of a later re-list) would replace the whole store with
//! that namespace's objects only. [`Merge`] turns them into:
//! - one `Init` … `InitDone` for the first lists of every namespace: `InitDone` only once each
//!   namespace has listed (so `Store::wait_until_ready` still means "every cache synced");
//!   changes arriving meanwhile become `InitApply` (they land in the buffer being built);
//! - afterwards, a namespace's re-list becomes `Apply` of what it lists, then `Delete` of its
//!   objects that vanished meanwhile; the other namespaces' objects stay untouched.
//!
//! It keeps a copy of every object it passed on (a synthesized `Delete` needs the object:
//! consumers such as `touched_objects` map it by its annotations). Pure: no I/O.

use std::collections::{HashMap, HashSet};

use futures::{Stream, StreamExt, stream};
use kube::ResourceExt;
use kube::runtime::watcher::Event;

/// What one source (one namespace's watch) has told the merged stream.
struct Source<K> {
    /// Its objects the store holds, or will hold at the merged `InitDone`, by name.
    known: HashMap<String, K>,
    /// The names listed so far while this source is (re-)listing.
    listing: Option<HashSet<String>>,
    /// Objects gone before the merged `InitDone` that may still be in the store's buffer:
    /// deleted right after it.
    stale: HashMap<String, K>,
    /// Whether its first list is complete.
    listed: bool,
}

impl<K> Default for Source<K> {
    fn default() -> Self {
        Self {
            known: HashMap::new(),
            listing: None,
            stale: HashMap::new(),
            listed: false,
        }
    }
}

/// The state machine that merges the event streams of several watches into one (see the
/// module documentation). Sources are numbered `0..sources`.
pub struct Merge<K> {
    sources: Vec<Source<K>>,
    /// Whether the merged `Init` went out.
    started: bool,
    /// Whether the merged `InitDone` went out.
    ready: bool,
}

impl<K: ResourceExt + Clone> Merge<K> {
    /// A merge of `sources` watches. With none it never emits anything.
    pub fn new(sources: usize) -> Self {
        Self {
            sources: (0..sources).map(|_| Source::default()).collect(),
            started: false,
            ready: false,
        }
    }

    /// The merged events to pass on for `event` of watch `source` (an unknown source number
    /// is ignored).
    pub fn push(&mut self, source: usize, event: Event<K>) -> Vec<Event<K>> {
        if source >= self.sources.len() {
            return Vec::new();
        }
        match event {
            Event::Init => self.init(source),
            Event::InitApply(object) => self.listed(source, object),
            Event::InitDone => self.init_done(source),
            Event::Apply(object) => self.apply(source, object),
            Event::Delete(object) => self.delete(source, object),
        }
    }

    fn init(&mut self, source: usize) -> Vec<Event<K>> {
        self.sources[source].listing = Some(HashSet::new());
        if self.started {
            return Vec::new();
        }
        self.started = true;
        vec![Event::Init]
    }

    fn listed(&mut self, source: usize, object: K) -> Vec<Event<K>> {
        let name = object.name_any();
        if let Some(listing) = &mut self.sources[source].listing {
            listing.insert(name);
        }
        self.apply(source, object)
    }

    fn apply(&mut self, source: usize, object: K) -> Vec<Event<K>> {
        self.sources[source]
            .known
            .insert(object.name_any(), object.clone());
        if self.ready {
            vec![Event::Apply(object)]
        } else {
            // The store is building its buffer: only InitApply lands there.
            vec![Event::InitApply(object)]
        }
    }

    fn delete(&mut self, source: usize, object: K) -> Vec<Event<K>> {
        let name = object.name_any();
        let state = &mut self.sources[source];
        state.known.remove(&name);
        if self.ready {
            return vec![Event::Delete(object)];
        }
        // The buffer may hold it and cannot lose an entry: delete it once swapped in.
        state.stale.insert(name, object);
        Vec::new()
    }

    fn init_done(&mut self, source: usize) -> Vec<Event<K>> {
        let ready = self.ready;
        let state = &mut self.sources[source];
        let listing = state.listing.take().unwrap_or_default();
        let vanished: Vec<String> = state
            .known
            .keys()
            .filter(|name| !listing.contains(*name))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in vanished {
            if let Some(object) = state.known.remove(&name) {
                if ready {
                    out.push(Event::Delete(object));
                } else {
                    state.stale.insert(name, object);
                }
            }
        }
        state.listed = true;
        if !ready && self.sources.iter().all(|s| s.listed) {
            out.extend(self.finish_init());
        }
        out
    }

    /// The merged `InitDone`, then the deletion of what went stale in the buffer.
    fn finish_init(&mut self) -> Vec<Event<K>> {
        self.ready = true;
        let mut out = vec![Event::InitDone];
        for state in &mut self.sources {
            let stale = std::mem::take(&mut state.stale);
            out.extend(
                stale
                    .into_iter()
                    .filter(|(name, _)| !state.known.contains_key(name))
                    .map(|(_, object)| Event::Delete(object)),
            );
        }
        out
    }
}

/// Merges the event streams of several watches (one per namespace) into one stream that a
/// single reflector can consume (see [`Merge`]). Errors pass through unchanged. With one
/// stream, prefer that stream itself: the merge keeps a copy of every object.
pub fn merge<K, E, S>(streams: Vec<S>) -> impl Stream<Item = Result<Event<K>, E>> + Send
where
    K: ResourceExt + Clone + Send + 'static,
    E: Send + 'static,
    S: Stream<Item = Result<Event<K>, E>> + Send + Unpin + 'static,
{
    let merge = Merge::new(streams.len());
    let tagged = streams
        .into_iter()
        .enumerate()
        .map(|(source, s)| s.map(move |item| (source, item)));
    stream::select_all(tagged)
        .scan(merge, |merge, (source, item)| {
            let out: Vec<Result<Event<K>, E>> = match item {
                Ok(event) => merge.push(source, event).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            std::future::ready(Some(stream::iter(out)))
        })
        .flatten()
}

#[cfg(test)]
mod tests;
