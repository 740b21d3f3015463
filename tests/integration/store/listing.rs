//! `Listing`: a tenant's sessions, newest first (creation time, then id), by user, status,
//! provider and creation time, page by page through a cursor bound to its listing: never another
//! tenant's session, and never a page that ends the listing while sessions it wants are left.

use super::*;
use idv::session::{ProviderDeletion, Redaction, RedactionState};
use idv::store::{Page, SessionFilter};
use std::collections::HashSet;

super::contract!(
    a_users_sessions_list_newest_first_per_tenant,
    cursors_page_through_and_foreign_cursors_are_refused,
    a_tenants_sessions_list_newest_first_and_never_another_tenants,
    each_filter_lists_exactly_the_sessions_it_wants,
    a_status_change_moves_a_session_between_status_listings,
    an_empty_creation_range_lists_nothing,
    a_match_behind_many_others_is_reached_by_following_the_cursor,
    a_redacted_session_is_listed_by_its_tenant_and_never_under_its_user,
);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", idv::ids::random_token())
}

async fn page(
    store: &dyn Adapter,
    tenant: &str,
    f: &SessionFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Page {
    store
        .list_sessions(tenant, f, limit, cursor)
        .await
        .unwrap()
        .expect("a cursor of this listing")
}

/// Every session of a listing, following its cursor page by page (at most `max_pages`).
async fn all(
    store: &dyn Adapter,
    tenant: &str,
    f: &SessionFilter,
    limit: usize,
    max_pages: usize,
) -> Vec<SessionId> {
    let (mut ids, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let p = page(store, tenant, f, limit, cursor.as_deref()).await;
        assert!(p.sessions.len() <= limit, "{} > {limit}", p.sessions.len());
        ids.extend(p.sessions.iter().map(|s| s.id.clone()));
        pages += 1;
        assert!(pages <= max_pages, "the cursor does not lead to the end");
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
}

async fn a_users_sessions_list_newest_first_per_tenant(store: Arc<dyn Adapter>) {
    let user = unique("user");
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = session("t", &user, t0 + time::Duration::seconds(i));
        create(&*store, &s).await;
        ids.push(s.id.clone());
    }
    create(&*store, &session("other-tenant", &user, t0)).await;
    let p = page(&*store, "t", &SessionFilter::user(&user), 10, None).await;
    let got: Vec<SessionId> = p.sessions.iter().map(|s| s.id.clone()).collect();
    ids.reverse();
    assert_eq!(got, ids);
    assert_eq!(p.next_cursor, None);
    let none = page(&*store, "t", &SessionFilter::user("nobody"), 10, None).await;
    assert!(none.sessions.is_empty());
    assert_eq!(none.next_cursor, None);
}

async fn cursors_page_through_and_foreign_cursors_are_refused(store: Arc<dyn Adapter>) {
    let user = unique("user");
    let tenant = unique("t");
    let t0 = now();
    for i in 0..5 {
        create(
            &*store,
            &session(&tenant, &user, t0 + time::Duration::seconds(i)),
        )
        .await;
    }
    let mine = SessionFilter::user(&user);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = page(&*store, &tenant, &mine, 2, cursor.as_deref()).await;
        assert!(p.sessions.len() <= 2);
        seen.extend(p.sessions.iter().map(|s| s.created_at));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first across pages"
    );
    let c = page(&*store, &tenant, &mine, 2, None)
        .await
        .next_cursor
        .expect("a second page");
    // Another user's, another tenant's, another filter's, the whole tenant's, made up: refused.
    for (t, f) in [
        (tenant.as_str(), SessionFilter::user("another-user")),
        ("other", mine.clone()),
        (
            tenant.as_str(),
            SessionFilter {
                status: Some(Status::Created),
                ..mine.clone()
            },
        ),
        (tenant.as_str(), SessionFilter::default()),
    ] {
        assert_eq!(
            store.list_sessions(t, &f, 2, Some(&c)).await.unwrap(),
            None,
            "{t} {f:?}"
        );
    }
    assert_eq!(
        store
            .list_sessions(&tenant, &mine, 2, Some("garbage"))
            .await
            .unwrap(),
        None
    );
}

async fn a_tenants_sessions_list_newest_first_and_never_another_tenants(store: Arc<dyn Adapter>) {
    let (a, b) = (unique("app-a"), unique("app-b"));
    let t0 = t0();
    let mut mine = Vec::new();
    for i in 0..7 {
        // Two of a user, one each of others; B's interleaved in time, some of the same user.
        let user = if i < 2 {
            "user-1".to_owned()
        } else {
            format!("user-{i}")
        };
        let s = session(&a, &user, t0 + Duration::milliseconds(10 * i));
        create(&*store, &s).await;
        mine.push(s.id.clone());
        let theirs = session(&b, &user, t0 + Duration::milliseconds(10 * i + 5));
        create(&*store, &theirs).await;
    }
    mine.reverse();
    for limit in [1, 3, 7, 100] {
        assert_eq!(
            all(&*store, &a, &SessionFilter::default(), limit, 10).await,
            mine,
            "limit {limit}"
        );
    }
    let theirs = all(&*store, &b, &SessionFilter::default(), 3, 10).await;
    assert_eq!(theirs.len(), 7);
    assert!(theirs.iter().all(|id| !mine.contains(id)));
    // A cursor of B's listing is no cursor of A's, however alike the listings.
    let c = page(&*store, &b, &SessionFilter::default(), 1, None)
        .await
        .next_cursor
        .expect("more of B's");
    assert_eq!(
        store
            .list_sessions(&a, &SessionFilter::default(), 1, Some(&c))
            .await
            .unwrap(),
        None
    );
}

/// One session of the fixture: who, which provider, which status, when.
struct Row {
    id: SessionId,
    user: &'static str,
    provider: &'static str,
    status: Status,
    at: OffsetDateTime,
}

async fn each_filter_lists_exactly_the_sessions_it_wants(store: Arc<dyn Adapter>) {
    let tenant = unique("app");
    let t0 = t0();
    let plan: [(&str, &str, Status); 9] = [
        ("u1", "authento", Status::Created),
        ("u1", "stripe", Status::Verified),
        ("u2", "stripe", Status::Failed),
        ("u1", "stripe", Status::Pending),
        ("u2", "prove", Status::Verified),
        ("u3", "nevis", Status::Pending),
        ("u1", "prove", Status::Verified),
        ("u2", "authento", Status::Created),
        ("u3", "stripe", Status::Verified),
    ];
    let mut rows = Vec::new();
    for (i, (user, provider, status)) in plan.into_iter().enumerate() {
        // A second apart: creation-time filters cut between sessions.
        let at = t0 + Duration::seconds(i as i64);
        let s = Session::new(&tenant, Provider::named(provider), user, at);
        create(&*store, &s).await;
        if status != Status::Created {
            let stored = read(&*store, &s.id).await;
            let (next, h) = bumped(&stored, status);
            store
                .update_session(write(&stored, &next, Some(&h)))
                .await
                .unwrap();
        }
        rows.push(Row {
            id: s.id,
            user,
            provider,
            status,
            at,
        });
    }
    // Another tenant with the same users, providers and statuses.
    for (user, provider, _) in plan {
        let s = Session::new("app-other", Provider::named(provider), user, t0);
        create(&*store, &s).await;
    }
    let at = move |i: i64| t0 + Duration::seconds(i);
    let base = SessionFilter::default();
    type Wanted = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(SessionFilter, Wanted)> = vec![
        (base.clone(), Box::new(|_: &Row| true)),
        (
            SessionFilter::user("u1"),
            Box::new(|r: &Row| r.user == "u1"),
        ),
        (
            SessionFilter {
                status: Some(Status::Verified),
                ..base.clone()
            },
            Box::new(|r: &Row| r.status == Status::Verified),
        ),
        (
            SessionFilter {
                provider: Some(Provider::named("stripe")),
                ..base.clone()
            },
            Box::new(|r: &Row| r.provider == "stripe"),
        ),
        (
            SessionFilter {
                status: Some(Status::Verified),
                provider: Some(Provider::named("stripe")),
                ..base.clone()
            },
            Box::new(|r: &Row| r.status == Status::Verified && r.provider == "stripe"),
        ),
        (
            SessionFilter {
                status: Some(Status::Verified),
                ..SessionFilter::user("u1")
            },
            Box::new(|r: &Row| r.user == "u1" && r.status == Status::Verified),
        ),
        (
            SessionFilter {
                provider: Some(Provider::named("stripe")),
                ..SessionFilter::user("u2")
            },
            Box::new(|r: &Row| r.user == "u2" && r.provider == "stripe"),
        ),
        (
            SessionFilter {
                created_from: Some(at(3)),
                ..base.clone()
            },
            Box::new(move |r: &Row| r.at >= at(3)),
        ),
        (
            SessionFilter {
                created_until: Some(at(3)),
                ..base.clone()
            },
            Box::new(move |r: &Row| r.at < at(3)),
        ),
        (
            SessionFilter {
                created_from: Some(at(2)),
                created_until: Some(at(7)),
                status: Some(Status::Verified),
                ..base.clone()
            },
            Box::new(move |r: &Row| r.at >= at(2) && r.at < at(7) && r.status == Status::Verified),
        ),
        (
            SessionFilter {
                created_from: Some(at(1)),
                created_until: Some(at(6)),
                ..SessionFilter::user("u1")
            },
            Box::new(move |r: &Row| r.user == "u1" && r.at >= at(1) && r.at < at(6)),
        ),
        (
            SessionFilter {
                status: Some(Status::Expired),
                ..base.clone()
            },
            Box::new(|_: &Row| false),
        ),
    ];
    for (f, wanted) in &cases {
        let mut want: Vec<SessionId> = rows
            .iter()
            .filter(|r| wanted(r))
            .map(|r| r.id.clone())
            .collect();
        want.reverse();
        for limit in [1, 2, 100] {
            assert_eq!(
                all(&*store, &tenant, f, limit, 20).await,
                want,
                "{f:?} limit {limit}"
            );
        }
        // The sessions answered are the stored ones, whole.
        for s in page(&*store, &tenant, f, 100, None).await.sessions {
            assert_eq!(s, read(&*store, &s.id).await.value);
        }
    }
}

async fn a_status_change_moves_a_session_between_status_listings(store: Arc<dyn Adapter>) {
    let tenant = unique("app");
    let s = session(&tenant, "user-1", t0());
    create(&*store, &s).await;
    let with = |status| SessionFilter {
        status: Some(status),
        ..SessionFilter::default()
    };
    assert_eq!(
        all(&*store, &tenant, &with(Status::Created), 10, 2).await,
        std::slice::from_ref(&s.id)
    );
    let stored = read(&*store, &s.id).await;
    let (next, h) = bumped(&stored, Status::Verified);
    store
        .update_session(write(&stored, &next, Some(&h)))
        .await
        .unwrap();
    assert_eq!(
        all(&*store, &tenant, &with(Status::Created), 10, 2).await,
        Vec::<SessionId>::new()
    );
    let listed = page(&*store, &tenant, &with(Status::Verified), 10, None).await;
    assert_eq!(listed.sessions, [read(&*store, &s.id).await.value]);
}

async fn an_empty_creation_range_lists_nothing(store: Arc<dyn Adapter>) {
    let tenant = unique("app");
    let t = t0();
    create(&*store, &session(&tenant, "user-1", t)).await;
    for (from, until) in [(t, t), (t + Duration::seconds(1), t)] {
        let f = SessionFilter {
            created_from: Some(from),
            created_until: Some(until),
            ..SessionFilter::default()
        };
        let p = page(&*store, &tenant, &f, 10, None).await;
        assert!(p.sessions.is_empty() && p.next_cursor.is_none(), "{f:?}");
    }
    // The bounds themselves: from is in, until is out.
    let f = SessionFilter {
        created_from: Some(t),
        created_until: Some(t + Duration::nanoseconds(1)),
        ..SessionFilter::default()
    };
    assert_eq!(page(&*store, &tenant, &f, 10, None).await.sessions.len(), 1);
}

/// A match behind more sessions than one page reads (DynamoDB: three rounds of 100 index
/// entries): a page may come back short, even empty, but its cursor leads on, and following it
/// finds the match; nothing is answered twice.
async fn a_match_behind_many_others_is_reached_by_following_the_cursor(store: Arc<dyn Adapter>) {
    let tenant = unique("app");
    let t = t0();
    let oldest = Session::new(&tenant, Provider::named("stripe"), "user-0", t);
    create(&*store, &oldest).await;
    let newest = Session::new(
        &tenant,
        Provider::named("stripe"),
        "user-0",
        t + Duration::seconds(2),
    );
    create(&*store, &newest).await;
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..4 {
        let store = store.clone();
        let tenant = tenant.clone();
        tasks.spawn(async move {
            for i in 0..80 {
                let at = t + Duration::seconds(1) + Duration::microseconds(chunk * 100 + i);
                let s = Session::new(&tenant, Provider::named("nevis"), "user-1", at);
                create(&*store, &s).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let f = SessionFilter {
        provider: Some(Provider::named("stripe")),
        ..SessionFilter::default()
    };
    assert_eq!(
        all(&*store, &tenant, &f, 20, 10).await,
        [newest.id.clone(), oldest.id.clone()]
    );
    // One at a time: the first page has the newest and a cursor; what follows ends in the oldest.
    let first = page(&*store, &tenant, &f, 1, None).await;
    assert_eq!(first.sessions, [newest]);
    let rest = {
        let mut ids = HashSet::new();
        let mut cursor = first.next_cursor;
        while let Some(c) = cursor {
            let p = page(&*store, &tenant, &f, 1, Some(&c)).await;
            ids.extend(p.sessions.iter().map(|s| s.id.clone()));
            cursor = p.next_cursor;
        }
        ids
    };
    assert_eq!(rest, HashSet::from([oldest.id]));
    // Unfiltered, every one of the 322 once.
    let every = all(&*store, &tenant, &SessionFilter::default(), 100, 10).await;
    assert_eq!(every.len(), 322);
    assert_eq!(every.iter().collect::<HashSet<_>>().len(), 322);
}

fn redaction(state: RedactionState) -> Redaction {
    Redaction {
        state,
        at: now(),
        provider_deletion: ProviderDeletion::Unsupported,
        deletion_ref: None,
        deletion_attempts: 0,
    }
}

/// A session being redacted (marked, as `flows::redact` does first) or redacted (its erased
/// state written) is no longer its user's: no listing by user finds it, filtered or not, under
/// the user's id or `redacted`; the tenant's listing still does, as redacted. A user redaction
/// reads the user's sessions through this listing.
async fn a_redacted_session_is_listed_by_its_tenant_and_never_under_its_user(
    store: Arc<dyn Adapter>,
) {
    let tenant = unique("app");
    let user = unique("user");
    let at = t0();
    let kept = session(&tenant, &user, at);
    let marked = session(&tenant, &user, at + time::Duration::seconds(1));
    let done = session(&tenant, &user, at + time::Duration::seconds(2));
    for s in [&kept, &marked, &done] {
        create(&*store, s).await;
    }
    let r = read(&*store, &marked.id).await;
    let mut next = r.value.clone();
    next.redaction = Some(redaction(RedactionState::Redacting));
    store.update_session(write(&r, &next, None)).await.unwrap();
    let r = read(&*store, &done.id).await;
    let mut erased = r.value.erased();
    erased.redaction = Some(redaction(RedactionState::Redacted));
    let entry = HistoryEntry {
        session_id: done.id.clone(),
        version: r.next_version(),
        at: now(),
        from: r.status,
        to: r.status,
        provider_status: None,
        source: Source::App,
        reason: Some("redacted".into()),
        provider_event: None,
    };
    store
        .write_redacted(
            write(&r, &erased, Some(&entry)),
            &[first_entry(&done).erased()],
        )
        .await
        .unwrap();

    let by_status = |user: &str| SessionFilter {
        status: Some(Status::Created),
        ..SessionFilter::user(user)
    };
    for limit in [1, 10] {
        for f in [SessionFilter::user(&user), by_status(&user)] {
            assert_eq!(
                all(&*store, &tenant, &f, limit, 5).await,
                vec![kept.id.clone()],
                "{f:?}, limit {limit}"
            );
        }
        for f in [SessionFilter::user("redacted"), by_status("redacted")] {
            assert!(
                all(&*store, &tenant, &f, limit, 5).await.is_empty(),
                "{f:?}"
            );
        }
    }
    let p = page(&*store, &tenant, &SessionFilter::default(), 10, None).await;
    let got: Vec<(&SessionId, &str)> = p
        .sessions
        .iter()
        .map(|s| (&s.id, s.user_id.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (&done.id, "redacted"),
            (&marked.id, user.as_str()),
            (&kept.id, user.as_str())
        ]
    );
    assert!(p.sessions[0].is_redacted() && p.sessions[1].is_redacted());
}
