//! `Sessions`: a session reads back as written (every provider's own data too), is created once,
//! written only over the version read, and keeps a bounded history (listing: `listing`).

use super::*;
use idv::providers::passbase::Evidence;
use idv::store::StoreError;

super::contract!(
    a_created_session_reads_back_identically,
    a_session_id_is_created_once,
    writes_with_a_stale_version_are_refused,
    concurrent_writers_never_lose_an_update,
    history_is_append_only_and_ordered,
    a_long_history_keeps_its_first_entry_and_the_latest_ones,
    writes_go_over_what_the_last_write_answered,
    prove_details_read_back_identically,
    evidence_reads_back_identically,
);

async fn a_created_session_reads_back_identically(store: Arc<dyn Adapter>) {
    let mut s = session("t", "user-1", now());
    s.data = idv::session::ProviderData::of(&idv::providers::authento::AuthentoData {
        verification_type: Some(idv::providers::authento::VerificationType::Poa),
        lang: Some("de".into()),
        ..Default::default()
    });
    s.expires_at = Some(now() + time::Duration::minutes(15));
    s.last_error = Some(idv::session::LastError {
        code: idv::session::FailureCode::Rejected,
        provider_code: Some("REJECTED".into()),
        message: "no".into(),
    });
    create(&*store, &s).await;
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(Stored::into_value), Some(s));
    assert_eq!(
        store
            .get_session(&SessionId::generate())
            .await
            .unwrap()
            .map(Stored::into_value),
        None
    );
}

async fn a_session_id_is_created_once(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let err = store
        .create_session(&s, &first_entry(&s), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
}

async fn writes_with_a_stale_version_are_refused(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let v1 = read(&*store, &s.id).await;
    assert_eq!(v1.version, 1);
    let (v2, h2) = bumped(&v1, Status::Pending);
    let w = write(&v1, &v2, Some(&h2));
    store.update_session(w).await.unwrap();
    // A second writer that also read version 1 loses, and its history entry is not written.
    let (other, h_other) = bumped(&v1, Status::Processing);
    let w = write(&v1, &other, Some(&h_other));
    assert_eq!(
        store.update_session(w).await.unwrap_err(),
        StoreError::Conflict
    );
    assert_eq!(
        store.get_session(&s.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert_eq!(store.session_history(&s.id).await.unwrap().len(), 2);
}

async fn concurrent_writers_never_lose_an_update(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // 8 writers each add one history entry by read-modify-write with retries: all 8 land.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = s.id.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let cur = store.get_session(&id).await.unwrap().unwrap();
                let (next, h) = bumped(&cur, Status::Pending);
                match store.update_session(write(&cur, &next, Some(&h))).await {
                    Ok(_) => return,
                    Err(StoreError::Conflict) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get_session(&s.id).await.unwrap().unwrap().version, 9);
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    assert_eq!(versions, (1..=9).collect::<Vec<_>>());
}

async fn history_is_append_only_and_ordered(store: Arc<dyn Adapter>) {
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    let r1 = read(&*store, &s.id).await;
    let (v2, h2) = bumped(&r1, Status::Processing);
    // A write answers the session as now stored: the next write goes over it.
    let r2 = store
        .update_session(write(&r1, &v2, Some(&h2)))
        .await
        .unwrap();
    assert_eq!((r2.version, &r2.value), (2, &v2));
    let (v3, h3) = bumped(&r2, Status::Verified);
    let r3 = store
        .update_session(write(&r2, &v3, Some(&h3)))
        .await
        .unwrap();
    let h = store.session_history(&s.id).await.unwrap();
    let path: Vec<(Status, Status)> = h.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        path,
        vec![
            (Status::Created, Status::Created),
            (Status::Created, Status::Processing),
            (Status::Processing, Status::Verified)
        ]
    );
    assert_eq!(h[2], h3);
    // A write without history leaves the history alone.
    let mut v4 = v3.clone();
    v4.last_checked_at = Some(now());
    store.update_session(write(&r3, &v4, None)).await.unwrap();
    assert_eq!(store.session_history(&s.id).await.unwrap().len(), 3);
}

async fn a_long_history_keeps_its_first_entry_and_the_latest_ones(store: Arc<dyn Adapter>) {
    use idv::session::MAX_HISTORY;
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // A provider flipping its word forever must not make the session unwritable (DynamoDB's
    // item limit): the history holds the creation and the latest entries.
    let mut current = read(&*store, &s.id).await;
    let words = [Status::Pending, Status::Processing];
    for i in 0..(MAX_HISTORY + 5) {
        let (next, h) = bumped(&current, words[i % 2]);
        store
            .update_session(write(&current, &next, Some(&h)))
            .await
            .unwrap();
        // Read back, as every writer does: the store's view of the layout comes with it.
        current = store.get_session(&s.id).await.unwrap().unwrap();
    }
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    let last = current.version;
    let mut want = vec![1];
    want.extend((last + 1 - (MAX_HISTORY as u64 - 1))..=last);
    assert_eq!(versions, want);
}

async fn writes_go_over_what_the_last_write_answered(store: Arc<dyn Adapter>) {
    use idv::session::MAX_HISTORY;
    let s = session("t", "user-1", now());
    create(&*store, &s).await;
    // A flow writes again over what its write answered, without reading back: the version and
    // the layout it answers are the stored ones, past the history's cap too.
    let mut current = read(&*store, &s.id).await;
    let words = [Status::Pending, Status::Processing];
    for i in 0..(2 * MAX_HISTORY + 3) {
        let (next, h) = bumped(&current, words[i % 2]);
        current = store
            .update_session(write(&current, &next, Some(&h)))
            .await
            .unwrap();
    }
    let last = current.version;
    assert_eq!(read(&*store, &s.id).await.version, last);
    let versions: Vec<u64> = store
        .session_history(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.version)
        .collect();
    let mut want = vec![1];
    want.extend((last + 1 - (MAX_HISTORY as u64 - 1))..=last);
    assert_eq!(versions, want);
}

async fn prove_details_read_back_identically(store: Arc<dyn Adapter>) {
    let s = prove_session("user-p1");
    create(store.as_ref(), &s).await;
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(Stored::into_value), Some(s));
}

async fn evidence_reads_back_identically(store: Arc<dyn Adapter>) {
    let mut s = Session::new(
        "t",
        Provider::named("passbase"),
        "u",
        OffsetDateTime::now_utc(),
    );
    s.data = ProviderData::of(&Evidence {
        score: Some(0.93),
        document_type: Some("PASSPORT".into()),
        document_country: Some("DEU".into()),
    });
    store
        .create_session(&s, &HistoryEntry::created(&s), &[], None)
        .await
        .unwrap();
    let got = store.get_session(&s.id).await.unwrap();
    assert_eq!(got.map(|g| g.value), Some(s));
}
