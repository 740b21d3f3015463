//! `Outbox`: a tenant's endpoints (created once, written on their version, never seen by another
//! tenant), its events (stored once with their deliveries, listed newest first through a cursor
//! and filters), and the deliveries' attempts: leased by one attempt at a time, recorded under
//! that lease, due at their next attempt or when a dead attempt's lease ends, requeued by a resend.

use super::*;
use idv::events::derive::event_id;
use idv::events::model::MAX_ATTEMPTS_KEPT;
use idv::events::{
    AttemptRecord, Endpoint, Event, EventType, OutboundDelivery, OutboundKey, OutboundState,
};
use idv::store::{EventFilter, StoreError};
use std::collections::{BTreeMap, BTreeSet};

super::contract!(
    an_endpoint_is_created_once_and_written_on_its_version,
    endpoints_are_listed_oldest_first_per_tenant_and_deleted_once,
    an_event_is_stored_once_with_its_deliveries,
    an_event_is_stored_whole_or_not_at_all,
    events_are_listed_newest_first_after_a_cursor,
    filtered_listings_read_past_events_that_do_not_match,
    a_match_behind_many_others_is_reached_by_following_the_cursor,
    a_delivery_is_leased_by_one_attempt_and_recorded_under_its_lease,
    deliveries_are_due_at_their_next_attempt_or_when_a_lease_ends,
    a_requeued_delivery_starts_a_new_round,
    a_delivery_is_added_once,
    a_delivery_keeps_its_latest_attempts,
);

const A: &str = "app-a";
const B: &str = "app-b";

fn endpoint(tenant: &str, id: &str, at: OffsetDateTime) -> Endpoint {
    Endpoint {
        id: id.into(),
        tenant: tenant.into(),
        url: format!("https://hooks.example.com/{id}"),
        event_types: vec![EventType::SessionVerified, EventType::SessionFailed],
        description: Some("ops".into()),
        enabled: true,
        disabled_reason: None,
        secret: "sealed-secret".into(),
        previous_secret: Some(("sealed-old".into(), at + Duration::hours(24))),
        failing_since: None,
        created_at: at,
        updated_at: at,
        version: 0,
    }
}

/// An event of `tenant` at `at` (its id sorts by `at`); `seed` tells events of one time apart.
fn event(
    tenant: &str,
    at: OffsetDateTime,
    seed: &str,
    t: EventType,
    session: Option<&SessionId>,
) -> Event {
    let id = event_id(at, seed);
    Event {
        body: format!(r#"{{"id":"{id}","type":"{}"}}"#, t.as_str()),
        id,
        tenant: tenant.into(),
        event_type: t,
        session_id: session.cloned(),
        created_at: at,
    }
}

fn key(e: &Event, endpoint_id: &str) -> OutboundKey {
    OutboundKey {
        tenant: e.tenant.clone(),
        event_id: e.id.clone(),
        endpoint_id: endpoint_id.into(),
    }
}

/// An event's deliveries as stored, by endpoint id (the port promises no order).
async fn deliveries_of(store: &dyn Adapter, e: &Event) -> Vec<OutboundDelivery> {
    let (stored, mut ds) = store
        .get_event(&e.tenant, &e.id)
        .await
        .unwrap()
        .expect("the event");
    assert_eq!(&stored, e);
    ds.sort_by(|a, b| a.key.endpoint_id.cmp(&b.key.endpoint_id));
    ds
}

async fn delivery(store: &dyn Adapter, k: &OutboundKey) -> OutboundDelivery {
    let e = store
        .get_event(&k.tenant, &k.event_id)
        .await
        .unwrap()
        .expect("the event");
    e.1.into_iter().find(|d| d.key == *k).expect("the delivery")
}

fn failed_attempt(at: OffsetDateTime) -> AttemptRecord {
    AttemptRecord {
        at,
        status: Some(503),
        latency_ms: 120,
        error: None,
    }
}

/// Every delivery due at `now`, asked of every shard: each shard answers only its own (no key in
/// two shards), earliest first as far as `due` says when each is due.
async fn due_set(
    store: &dyn Adapter,
    now: OffsetDateTime,
    due: &BTreeMap<OutboundKey, OffsetDateTime>,
) -> BTreeSet<OutboundKey> {
    let mut all = BTreeSet::new();
    for shard in 0..store.outbound_shards() {
        let keys = store.due_outbound(shard, now, 1000).await.unwrap();
        let times: Vec<OffsetDateTime> = keys.iter().filter_map(|k| due.get(k).copied()).collect();
        assert!(
            times.is_sorted(),
            "shard {shard} answers earliest first: {keys:?}"
        );
        for k in keys {
            assert!(all.insert(k.clone()), "{k:?} is in two shards");
        }
    }
    all
}

fn keys<'a>(ks: impl IntoIterator<Item = &'a OutboundKey>) -> BTreeSet<OutboundKey> {
    ks.into_iter().cloned().collect()
}

// ---- endpoints ---------------------------------------------------------------------------------

async fn an_endpoint_is_created_once_and_written_on_its_version(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = endpoint(A, "ep_1", t);
    store.put_endpoint(&e, None).await.unwrap();
    let stored = store.get_endpoint(A, "ep_1").await.unwrap().unwrap();
    assert_eq!(stored.version, 1, "stored at version + 1");
    assert_eq!(
        stored,
        Endpoint {
            version: 1,
            ..e.clone()
        },
        "kept whole"
    );

    // Created again: the id is taken, the stored one stays.
    let twin = Endpoint {
        url: "https://elsewhere.example.com/".into(),
        ..e.clone()
    };
    assert_eq!(
        store.put_endpoint(&twin, None).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.get_endpoint(A, "ep_1").await.unwrap(),
        Some(stored.clone())
    );

    // A new state on the version read: stored, the version moves on.
    let disabled = Endpoint {
        enabled: false,
        disabled_reason: Some("gone".into()),
        description: None,
        event_types: vec![],
        previous_secret: None,
        failing_since: Some(t + Duration::minutes(5)),
        updated_at: t + Duration::minutes(6),
        ..stored.clone()
    };
    store.put_endpoint(&disabled, Some(1)).await.unwrap();
    let now_stored = store.get_endpoint(A, "ep_1").await.unwrap().unwrap();
    assert_eq!(
        now_stored,
        Endpoint {
            version: 2,
            ..disabled.clone()
        }
    );

    // A write on a stale version, or on one of an endpoint that does not exist: refused,
    // nothing changed or created.
    assert_eq!(
        store.put_endpoint(&stored, Some(1)).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.get_endpoint(A, "ep_1").await.unwrap(),
        Some(now_stored)
    );
    let ghost = endpoint(A, "ep_ghost", t);
    assert_eq!(
        store.put_endpoint(&ghost, Some(1)).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(store.get_endpoint(A, "ep_ghost").await.unwrap(), None);
    // Another tenant does not read it by its id.
    assert_eq!(store.get_endpoint(B, "ep_1").await.unwrap(), None);
}

async fn endpoints_are_listed_oldest_first_per_tenant_and_deleted_once(store: Arc<dyn Adapter>) {
    let t = t0();
    // Ids that sort against their age: the order is by creation.
    let first = endpoint(A, "ep_z", t);
    let second = endpoint(A, "ep_a", t + Duration::seconds(1));
    let third = endpoint(A, "ep_m", t + Duration::seconds(2));
    let theirs = endpoint(B, "ep_b", t);
    for e in [&third, &theirs, &first, &second] {
        store.put_endpoint(e, None).await.unwrap();
    }
    let ids = |l: Vec<Endpoint>| l.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_endpoints(A).await.unwrap()),
        ["ep_z", "ep_a", "ep_m"]
    );
    assert_eq!(ids(store.list_endpoints(B).await.unwrap()), ["ep_b"]);
    assert!(store.list_endpoints("app-c").await.unwrap().is_empty());

    // Another tenant's id is not deleted through this one.
    assert!(!store.delete_endpoint(B, "ep_a").await.unwrap());
    assert!(store.get_endpoint(A, "ep_a").await.unwrap().is_some());
    assert!(store.delete_endpoint(A, "ep_a").await.unwrap());
    assert!(!store.delete_endpoint(A, "ep_a").await.unwrap(), "once");
    assert_eq!(store.get_endpoint(A, "ep_a").await.unwrap(), None);
    assert_eq!(
        ids(store.list_endpoints(A).await.unwrap()),
        ["ep_z", "ep_m"]
    );
    assert_eq!(ids(store.list_endpoints(B).await.unwrap()), ["ep_b"]);
}

// ---- events ------------------------------------------------------------------------------------

async fn an_event_is_stored_once_with_its_deliveries(store: Arc<dyn Adapter>) {
    let t = t0();
    let session = SessionId::generate();
    let e = event(A, t, "s1", EventType::SessionVerified, Some(&session));
    let ds = vec![
        OutboundDelivery::new(key(&e, "ep_1"), t),
        OutboundDelivery::new(key(&e, "ep_2"), t),
    ];
    assert!(store.add_event(&e, &ds).await.unwrap());
    assert_eq!(deliveries_of(&*store, &e).await, ds);

    // An attempt of one delivery, then the same change read again (a stream batch retried).
    let k1 = key(&e, "ep_1");
    store
        .lease_outbound(&k1, "l1", t, t + Duration::seconds(30))
        .await
        .unwrap()
        .expect("leased");
    let attempted = OutboundDelivery {
        attempts: vec![failed_attempt(t)],
        round: 1,
        next_at: Some(t + Duration::minutes(1)),
        ..ds[0].clone()
    };
    store.record_outbound(&attempted, "l1").await.unwrap();
    let again = vec![
        OutboundDelivery::new(key(&e, "ep_1"), t + Duration::seconds(5)),
        OutboundDelivery::new(key(&e, "ep_2"), t + Duration::seconds(5)),
        OutboundDelivery::new(key(&e, "ep_3"), t + Duration::seconds(5)),
    ];
    assert!(!store.add_event(&e, &again).await.unwrap(), "stored before");
    assert_eq!(
        deliveries_of(&*store, &e).await,
        vec![attempted, ds[1].clone()],
        "nothing reset, duplicated or added"
    );

    // Another tenant does not read it; an unknown id is none.
    assert_eq!(store.get_event(B, &e.id).await.unwrap(), None);
    assert_eq!(
        store.get_event(A, &event_id(t, "unknown")).await.unwrap(),
        None
    );

    // An event no endpoint wants: stored alone, once; one without a session.
    let alone = event(A, t, "s2", EventType::UserReauthenticated, None);
    assert!(store.add_event(&alone, &[]).await.unwrap());
    assert!(!store.add_event(&alone, &[]).await.unwrap());
    assert!(deliveries_of(&*store, &alone).await.is_empty());
}

/// A delivery that exists already (added by a resend) makes the event's write fail whole: the
/// event and its other deliveries are not written either, as in one transaction.
async fn an_event_is_stored_whole_or_not_at_all(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "w", EventType::SessionFailed, None);
    let mut resent = OutboundDelivery::new(key(&e, "ep_1"), t);
    resent.round = 2;
    store.add_outbound(&resent).await.unwrap();
    let ds = vec![
        OutboundDelivery::new(key(&e, "ep_1"), t + Duration::seconds(1)),
        OutboundDelivery::new(key(&e, "ep_2"), t + Duration::seconds(1)),
    ];
    assert!(!store.add_event(&e, &ds).await.unwrap());
    assert_eq!(store.get_event(A, &e.id).await.unwrap(), None);
    let (listed, _) = store
        .list_events(A, &EventFilter::default(), 10, None)
        .await
        .unwrap();
    assert!(listed.is_empty());
    let due = BTreeMap::from([(resent.key.clone(), t)]);
    assert_eq!(
        due_set(&*store, t + Duration::hours(1), &due).await,
        keys([&resent.key]),
        "the other delivery was not written"
    );
}

async fn events_are_listed_newest_first_after_a_cursor(store: Arc<dyn Adapter>) {
    let t = t0();
    let es: Vec<Event> = (0..5)
        .map(|i| {
            event(
                A,
                t + Duration::seconds(i),
                &format!("e{i}"),
                EventType::SessionPending,
                None,
            )
        })
        .collect();
    for i in [3, 0, 4, 1, 2] {
        store.add_event(&es[i], &[]).await.unwrap();
    }
    let theirs = event(
        B,
        t + Duration::seconds(9),
        "b",
        EventType::SessionPending,
        None,
    );
    store.add_event(&theirs, &[]).await.unwrap();

    let all = EventFilter::default();
    let list = |limit: usize, after: Option<String>| {
        let store = store.clone();
        let all = all.clone();
        async move {
            let (page, next) = store
                .list_events(A, &all, limit, after.as_deref())
                .await
                .unwrap();
            (page, next.is_some())
        }
    };
    let newest_first: Vec<Event> = es.iter().rev().cloned().collect();
    assert_eq!(list(2, None).await, (newest_first[..2].to_vec(), true));
    assert_eq!(
        list(2, Some(es[3].id.clone())).await,
        (newest_first[2..4].to_vec(), true),
        "strictly after the cursor"
    );
    assert_eq!(
        list(2, Some(es[1].id.clone())).await,
        (newest_first[4..].to_vec(), false)
    );
    assert_eq!(
        list(5, None).await,
        (newest_first.clone(), false),
        "exactly all"
    );
    assert_eq!(list(50, None).await, (newest_first.clone(), false));
    assert_eq!(list(50, Some(es[0].id.clone())).await, (vec![], false));
    // A cursor that is no stored id (an event between two): after it all the same.
    let between = event_id(t + Duration::milliseconds(2500), "x");
    assert_eq!(
        list(50, Some(between)).await,
        (newest_first[2..].to_vec(), false)
    );
    let (page, next) = store.list_events(B, &all, 50, None).await.unwrap();
    assert_eq!((page, next), (vec![theirs], None));
    assert_eq!(
        store.list_events("app-c", &all, 50, None).await.unwrap(),
        (vec![], None)
    );
}

/// 150 events, 3 of them of one session and type: the DynamoDB adapter applies a filter after
/// reading, so a filtered page reads past pages of events that do not match.
async fn filtered_listings_read_past_events_that_do_not_match(store: Arc<dyn Adapter>) {
    let t = t0();
    let session = SessionId::generate();
    let other = SessionId::generate();
    let matching = [10, 75, 140];
    let es: Vec<Event> = (0..150)
        .map(|i| {
            let at = t + Duration::seconds(i);
            if matching.contains(&i) {
                event(A, at, "m", EventType::SessionVerified, Some(&session))
            } else if i % 2 == 0 {
                // Of the session, another type; of the type, another session.
                event(A, at, "s", EventType::SessionPending, Some(&session))
            } else {
                event(A, at, "o", EventType::SessionVerified, Some(&other))
            }
        })
        .collect();
    for e in &es {
        store.add_event(e, &[]).await.unwrap();
    }
    // Another tenant's match never shows.
    store
        .add_event(
            &event(
                B,
                t + Duration::seconds(200),
                "b",
                EventType::SessionVerified,
                Some(&session),
            ),
            &[],
        )
        .await
        .unwrap();

    let both = EventFilter {
        event_type: Some(EventType::SessionVerified),
        session_id: Some(session.clone()),
    };
    let list = |filter: EventFilter, limit: usize, after: Option<usize>| {
        let store = store.clone();
        let after = after.map(|i| es[i].id.clone());
        async move {
            let (page, next) = store
                .list_events(A, &filter, limit, after.as_deref())
                .await
                .unwrap();
            let more = next.is_some();
            let at: Vec<i64> = page
                .iter()
                .map(|e| (e.created_at - t).whole_seconds())
                .collect();
            (at, more)
        }
    };
    assert_eq!(list(both.clone(), 2, None).await, (vec![140, 75], true));
    assert_eq!(list(both.clone(), 2, Some(75)).await, (vec![10], false));
    assert_eq!(
        list(both.clone(), 3, None).await,
        (vec![140, 75, 10], false)
    );
    assert_eq!(list(both.clone(), 1, Some(140)).await, (vec![75], true));
    // From event 100 on exactly 100 events are left (a DynamoDB page): no more beyond them.
    assert_eq!(
        list(both.clone(), 10, Some(100)).await,
        (vec![75, 10], false)
    );
    assert_eq!(list(both.clone(), 10, Some(10)).await, (vec![], false));

    // One filter alone.
    let of_session = EventFilter {
        session_id: Some(session.clone()),
        ..EventFilter::default()
    };
    let (at, more) = list(of_session, 100, None).await;
    let expected: Vec<i64> = (0..150)
        .rev()
        .filter(|i| i % 2 == 0 || matching.contains(i))
        .collect();
    assert_eq!((at, more), (expected, false));
    let of_type = EventFilter {
        event_type: Some(EventType::SessionVerified),
        ..EventFilter::default()
    };
    let (at, more) = list(of_type.clone(), 5, None).await;
    assert_eq!((at, more), (vec![149, 147, 145, 143, 141], true));
    let none = EventFilter {
        event_type: Some(EventType::SessionCanceled),
        ..EventFilter::default()
    };
    assert_eq!(list(none, 10, None).await, (vec![], false));
    // Unfiltered: the limit holds.
    let (at, more) = list(EventFilter::default(), 20, None).await;
    assert_eq!((at, more), ((130..150).rev().collect::<Vec<i64>>(), true));
}

// ---- deliveries ----------------------------------------------------------------------------

async fn a_delivery_is_leased_by_one_attempt_and_recorded_under_its_lease(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "l", EventType::SessionVerified, None);
    let ds = vec![
        OutboundDelivery::new(key(&e, "ep_1"), t),
        OutboundDelivery::new(key(&e, "ep_2"), t),
    ];
    store.add_event(&e, &ds).await.unwrap();
    let k = key(&e, "ep_1");
    let until = t + Duration::seconds(30);

    // Never leased: nothing to record under.
    assert_eq!(
        store.record_outbound(&ds[0], "nobody").await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        store.lease_outbound(&k, "l1", t, until).await.unwrap(),
        Some(ds[0].clone())
    );
    // A second attempt while the first runs: none, up to the lease's last moment.
    assert_eq!(
        store
            .lease_outbound(&k, "l2", t + Duration::seconds(29), until)
            .await
            .unwrap(),
        None
    );
    // The first died: once its lease ran out, another takes it, and the first no longer
    // records.
    let later = until + Duration::seconds(1);
    assert_eq!(
        store
            .lease_outbound(&k, "l3", later, later + Duration::seconds(30))
            .await
            .unwrap(),
        Some(ds[0].clone())
    );
    let failed = OutboundDelivery {
        attempts: vec![failed_attempt(later)],
        round: 1,
        next_at: Some(later + Duration::minutes(5)),
        ..ds[0].clone()
    };
    for stale in ["l1", "l2", "wrong"] {
        assert_eq!(
            store.record_outbound(&failed, stale).await,
            Err(StoreError::Conflict),
            "{stale}"
        );
    }
    assert_eq!(delivery(&*store, &k).await, ds[0], "nothing recorded");
    store.record_outbound(&failed, "l3").await.unwrap();
    assert_eq!(delivery(&*store, &k).await, failed);
    // Recorded: the lease ended with it (once only).
    assert_eq!(
        store.record_outbound(&failed, "l3").await,
        Err(StoreError::Conflict)
    );
    let due = BTreeMap::from([(k.clone(), later + Duration::minutes(5))]);
    assert!(
        !due_set(&*store, later + Duration::minutes(4), &due)
            .await
            .contains(&k),
        "not before its next attempt"
    );
    let retry = later + Duration::minutes(5);
    assert!(due_set(&*store, retry, &due).await.contains(&k));

    // The retry delivers it: no longer leased, no longer due.
    let got = store
        .lease_outbound(&k, "l4", retry, retry + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(got, Some(failed.clone()));
    let delivered = OutboundDelivery {
        state: OutboundState::Delivered,
        attempts: vec![
            failed_attempt(later),
            AttemptRecord {
                at: retry,
                status: Some(204),
                latency_ms: 40,
                error: None,
            },
        ],
        round: 2,
        next_at: None,
        ..failed
    };
    store.record_outbound(&delivered, "l4").await.unwrap();
    assert_eq!(delivery(&*store, &k).await, delivered);
    let much_later = retry + Duration::days(1);
    assert_eq!(
        store
            .lease_outbound(&k, "l5", much_later, much_later + Duration::seconds(30))
            .await
            .unwrap(),
        None
    );
    assert!(
        !due_set(&*store, much_later, &BTreeMap::new())
            .await
            .contains(&k)
    );

    // Failed for good: not leased either.
    let k2 = key(&e, "ep_2");
    store
        .lease_outbound(&k2, "m1", t, until)
        .await
        .unwrap()
        .expect("leased");
    let gone = OutboundDelivery {
        state: OutboundState::Failed,
        attempts: vec![AttemptRecord {
            at: t,
            status: Some(410),
            latency_ms: 10,
            error: None,
        }],
        round: 1,
        next_at: None,
        reason: Some("gone".into()),
        ..ds[1].clone()
    };
    store.record_outbound(&gone, "m1").await.unwrap();
    assert_eq!(delivery(&*store, &k2).await, gone);
    assert_eq!(
        store
            .lease_outbound(&k2, "m2", much_later, much_later + Duration::seconds(30))
            .await
            .unwrap(),
        None
    );

    // Unknown: none, and nothing to record.
    let unknown = key(&e, "ep_none");
    assert_eq!(
        store.lease_outbound(&unknown, "x", t, until).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .record_outbound(&OutboundDelivery::new(unknown.clone(), t), "x")
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(deliveries_of(&*store, &e).await.len(), 2, "none created");
}

async fn deliveries_are_due_at_their_next_attempt_or_when_a_lease_ends(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "d", EventType::SessionVerified, None);
    // 40 deliveries, due a second apart: several in each shard.
    let ds: Vec<OutboundDelivery> = (0..40)
        .map(|i| {
            let mut d = OutboundDelivery::new(key(&e, &format!("ep_{i:02}")), t);
            d.next_at = Some(t + Duration::seconds(10 + i));
            d
        })
        .collect();
    // Three more due now: one to deliver, one to fail, one whose attempt dies.
    let now_due: Vec<OutboundDelivery> = ["ep_delivered", "ep_failed", "ep_dies"]
        .iter()
        .map(|id| OutboundDelivery::new(key(&e, id), t))
        .collect();
    let all: Vec<OutboundDelivery> = ds.iter().chain(&now_due).cloned().collect();
    store.add_event(&e, &all).await.unwrap();
    let mut due: BTreeMap<OutboundKey, OffsetDateTime> = all
        .iter()
        .map(|d| (d.key.clone(), d.next_at.unwrap()))
        .collect();

    assert_eq!(
        due_set(&*store, t, &due).await,
        keys(now_due.iter().map(|d| &d.key))
    );
    // Not before its time, at it, and still after it.
    assert_eq!(
        due_set(&*store, t + Duration::seconds(10), &due).await,
        keys(now_due.iter().chain(&ds[..1]).map(|d| &d.key))
    );
    assert_eq!(
        due_set(&*store, t + Duration::seconds(29), &due).await,
        keys(now_due.iter().chain(&ds[..20]).map(|d| &d.key))
    );
    // A shard answers at most `limit`, and no more than it holds.
    let mut first = 0;
    for shard in 0..store.outbound_shards() {
        let one = store
            .due_outbound(shard, t + Duration::hours(1), 1)
            .await
            .unwrap();
        assert!(one.len() <= 1);
        first += one.len();
    }
    assert!(first >= 1);

    for (d, state) in [
        (&now_due[0], OutboundState::Delivered),
        (&now_due[1], OutboundState::Failed),
    ] {
        store
            .lease_outbound(&d.key, "a", t, t + Duration::seconds(30))
            .await
            .unwrap()
            .expect("leased");
        let done = OutboundDelivery {
            state,
            attempts: vec![failed_attempt(t)],
            round: 1,
            next_at: None,
            ..d.clone()
        };
        store.record_outbound(&done, "a").await.unwrap();
        due.remove(&d.key);
    }
    // The third attempt dies: its delivery is due when its lease ends, not before.
    let lease_end = t + Duration::seconds(100);
    store
        .lease_outbound(&now_due[2].key, "dies", t, lease_end)
        .await
        .unwrap()
        .expect("leased");
    due.insert(now_due[2].key.clone(), lease_end);
    let at = t + Duration::seconds(99);
    assert_eq!(
        due_set(&*store, at, &due).await,
        keys(ds.iter().map(|d| &d.key)),
        "none delivered, failed or leased"
    );
    let all_due = due_set(&*store, lease_end, &due).await;
    assert_eq!(all_due, keys(due.keys()));
    assert!(
        all_due.contains(&now_due[2].key),
        "a dead attempt's delivery comes back"
    );
    assert_eq!(due_set(&*store, t + Duration::days(2), &due).await, all_due);
}

async fn a_requeued_delivery_starts_a_new_round(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "r", EventType::SessionExpired, None);
    let d = OutboundDelivery::new(key(&e, "ep_1"), t);
    store.add_event(&e, std::slice::from_ref(&d)).await.unwrap();
    store
        .lease_outbound(&d.key, "a", t, t + Duration::seconds(30))
        .await
        .unwrap()
        .expect("leased");
    let attempts: Vec<AttemptRecord> = (0..8)
        .map(|i| failed_attempt(t + Duration::minutes(i)))
        .collect();
    let failed = OutboundDelivery {
        state: OutboundState::Failed,
        attempts: attempts.clone(),
        round: 8,
        next_at: None,
        reason: Some("schedule_exhausted".into()),
        ..d.clone()
    };
    store.record_outbound(&failed, "a").await.unwrap();
    let later = t + Duration::days(1);
    let resend_at = later + Duration::seconds(10);
    assert!(
        due_set(&*store, resend_at, &BTreeMap::new())
            .await
            .is_empty()
    );

    store.requeue_outbound(&d.key, resend_at).await.unwrap();
    let requeued = OutboundDelivery {
        state: OutboundState::Pending,
        attempts,
        round: 0,
        next_at: Some(resend_at),
        reason: None,
        ..d.clone()
    };
    assert_eq!(delivery(&*store, &d.key).await, requeued, "attempts kept");
    let due = BTreeMap::from([(d.key.clone(), resend_at)]);
    assert!(due_set(&*store, later, &due).await.is_empty(), "not before");
    assert_eq!(due_set(&*store, resend_at, &due).await, keys([&d.key]));

    // A resend while an attempt runs: the attempt's lease ends, the resend's round stands.
    store
        .lease_outbound(&d.key, "b", resend_at, resend_at + Duration::seconds(30))
        .await
        .unwrap()
        .expect("leased");
    let again = resend_at + Duration::seconds(5);
    store.requeue_outbound(&d.key, again).await.unwrap();
    let attempt_b = OutboundDelivery {
        state: OutboundState::Delivered,
        round: 1,
        next_at: None,
        ..requeued.clone()
    };
    assert_eq!(
        store.record_outbound(&attempt_b, "b").await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        delivery(&*store, &d.key).await,
        OutboundDelivery {
            next_at: Some(again),
            ..requeued
        }
    );
    assert_eq!(
        store
            .lease_outbound(&d.key, "c", again, again + Duration::seconds(30))
            .await
            .unwrap()
            .map(|d| d.next_at),
        Some(Some(again)),
        "free to lease again"
    );
    // Unknown: nothing to requeue, nothing created.
    let unknown = key(&e, "ep_none");
    assert_eq!(
        store.requeue_outbound(&unknown, again).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(deliveries_of(&*store, &e).await.len(), 1);
}

async fn a_delivery_is_added_once(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "a", EventType::SessionVerified, None);
    let d1 = OutboundDelivery::new(key(&e, "ep_1"), t);
    store
        .add_event(&e, std::slice::from_ref(&d1))
        .await
        .unwrap();
    let at = t + Duration::minutes(3);
    let d2 = OutboundDelivery::new(key(&e, "ep_2"), at);
    store.add_outbound(&d2).await.unwrap();
    let mut twin = d2.clone();
    twin.round = 4;
    assert_eq!(store.add_outbound(&twin).await, Err(StoreError::Conflict));
    assert_eq!(
        store
            .add_outbound(&OutboundDelivery::new(d1.key.clone(), at))
            .await,
        Err(StoreError::Conflict),
        "one the event was stored with"
    );
    assert_eq!(
        deliveries_of(&*store, &e).await,
        vec![d1.clone(), d2.clone()]
    );
    let due = BTreeMap::from([(d1.key.clone(), t), (d2.key.clone(), at)]);
    assert_eq!(
        due_set(&*store, at - Duration::seconds(1), &due).await,
        keys([&d1.key])
    );
    assert_eq!(due_set(&*store, at, &due).await, keys([&d1.key, &d2.key]));
}

/// A delivery keeps its latest `MAX_ATTEMPTS_KEPT` attempts: resends cannot grow it without
/// bound (DynamoDB: the item's size, and so every write's cost).
async fn a_delivery_keeps_its_latest_attempts(store: Arc<dyn Adapter>) {
    let t = t0();
    let e = event(A, t, "k", EventType::SessionVerified, None);
    let d = OutboundDelivery::new(key(&e, "ep_1"), t);
    store.add_event(&e, std::slice::from_ref(&d)).await.unwrap();
    store
        .lease_outbound(&d.key, "a", t, t + Duration::seconds(30))
        .await
        .unwrap()
        .expect("leased");
    let attempts: Vec<AttemptRecord> = (0..MAX_ATTEMPTS_KEPT as i64 + 5)
        .map(|i| AttemptRecord {
            at: t + Duration::minutes(i),
            status: None,
            latency_ms: 10_000,
            error: Some("timeout".into()),
        })
        .collect();
    let recorded = OutboundDelivery {
        attempts: attempts.clone(),
        round: 3,
        next_at: Some(t + Duration::hours(1)),
        ..d.clone()
    };
    store.record_outbound(&recorded, "a").await.unwrap();
    assert_eq!(
        delivery(&*store, &d.key).await,
        OutboundDelivery {
            attempts: attempts[5..].to_vec(),
            ..recorded
        },
        "the oldest go first"
    );
}

/// A match behind more events than one listing reads (DynamoDB: ten pages of 100): a page may
/// come back empty, but its cursor leads on, and following it finds the match.
async fn a_match_behind_many_others_is_reached_by_following_the_cursor(store: Arc<dyn Adapter>) {
    let t = t0();
    let session = SessionId::generate();
    let oldest = event(A, t, "m", EventType::SessionVerified, Some(&session));
    store.add_event(&oldest, &[]).await.unwrap();
    for i in 1..=1100 {
        let e = event(
            A,
            t + Duration::seconds(i),
            "o",
            EventType::SessionPending,
            None,
        );
        store.add_event(&e, &[]).await.unwrap();
    }
    let filter = EventFilter {
        session_id: Some(session),
        ..EventFilter::default()
    };
    let (mut found, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let (page, next) = store
            .list_events(A, &filter, 20, cursor.as_deref())
            .await
            .unwrap();
        found.extend(page);
        pages += 1;
        assert!(pages < 10, "the cursor does not lead on");
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(found, vec![oldest]);
}
