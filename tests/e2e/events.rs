//! The operator's Event publisher against the real API server: a repeat is counted on the
//! first Event (`series`), a different note is a new Event, and a repeat whose Event was
//! deleted creates it anew.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, Resource as _};

use keysmith::reconcile::events::{EventNote, EventPublisher, EventType};

use crate::support;

fn note(reason: &str, text: &str) -> EventNote {
    EventNote {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(text.to_owned()),
        action: "Reconcile".to_owned(),
        secondary: None,
    }
}

/// The Events on `name` in `namespace`, oldest first: (note, series count or 1).
async fn events_on(client: &Client, namespace: &str, name: &str) -> Vec<(String, i32)> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut list: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    list.into_iter()
        .map(|e| {
            let count = e.series.as_ref().map_or(1, |s| s.count);
            (e.note.unwrap_or_default(), count)
        })
        .collect()
}

#[tokio::test]
async fn repeats_are_counted_and_a_deleted_event_is_created_anew() {
    let cp = support::shared();
    let client = cp.client();
    let ns = cp.namespace(&client, "events").await;
    let objects: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut object = ConfigMap::default();
    object.metadata.name = Some("regarding".to_owned());
    let object = objects
        .create(&PostParams::default(), &object)
        .await
        .expect("create the regarded object");
    let regarding = object.object_ref(&());
    let publisher = EventPublisher::new(client.clone(), "keysmith", "keysmith-test");
    let publish = |event: EventNote| {
        let publisher = publisher.clone();
        let regarding = regarding.clone();
        async move {
            publisher
                .publish(&event, &regarding)
                .await
                .expect("publish")
        }
    };

    for _ in 0..3 {
        publish(note("Failed", "first problem")).await;
    }
    assert_eq!(
        events_on(&client, &ns, "regarding").await,
        [("first problem".to_owned(), 3)]
    );

    publish(note("Failed", "second problem")).await;
    assert_eq!(
        events_on(&client, &ns, "regarding").await,
        [
            ("first problem".to_owned(), 3),
            ("second problem".to_owned(), 1)
        ]
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    events
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete the events");
    assert_eq!(events_on(&client, &ns, "regarding").await, []);
    publish(note("Failed", "first problem")).await;
    publish(note("Failed", "first problem")).await;
    assert_eq!(
        events_on(&client, &ns, "regarding").await,
        [("first problem".to_owned(), 2)]
    );
}
