//! The storage layer's plain-command modules against a real Redis: each
//! call does what its documentation says, through the `Store` functions
//! the API and the worker use (the Lua modules are exercised the same way
//! in `delivery/invariants.rs` and by every flow test).

use std::time::Duration;

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store::caps::{self, CappedAdd, CappedHash};
use hookfleet_common::store::retry::{self, RetryOutcome, RetryRequest, Retryable};
use hookfleet_common::store::tenants::{self, TenantRecord};
use hookfleet_common::store::{event_types, notices, publish, tenant_config, workers};
use hookfleet_common::time_util::now_ms;
use hookfleet_tests::{command_calls, OwnRedis, TestApp};

#[tokio::test]
async fn capped_hashes_refuse_a_member_over_the_cap_and_repeats_write_nothing() {
    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let hash = CappedHash::EventTypes {
        tenant_id: "ten_caps",
    };
    for (field, expected) in [
        ("a", CappedAdd::Added),
        ("a", CappedAdd::Exists),
        ("b", CappedAdd::Added),
        ("c", CappedAdd::Full),
    ] {
        let added = caps::capped_add(&mut conn, &keys, hash, 2, field, "{}")
            .await
            .expect("capped_add");
        assert_eq!(added, expected, "{field}");
    }
    let names = event_types::names(&mut conn, &keys, "ten_caps")
        .await
        .unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(event_types::delete(&mut conn, &keys, "ten_caps", "a")
        .await
        .unwrap());
    assert!(!event_types::delete(&mut conn, &keys, "ten_caps", "a")
        .await
        .unwrap());

    // Test-send places: the third of two waits, told when a place frees.
    let mut retry_in = Vec::new();
    for token in ["t1", "t2", "t3"] {
        retry_in.push(
            caps::take_test_send_place(&mut conn, &keys, "ten_caps", 2, token, 60_000)
                .await
                .expect("take a place"),
        );
    }
    assert_eq!(&retry_in[..2], [0, 0]);
    assert!(retry_in[2] > 0 && retry_in[2] <= 60_000, "{retry_in:?}");
    caps::release_test_send_place(&mut conn, &keys, "ten_caps", "t1")
        .await
        .unwrap();
    let again = caps::take_test_send_place(&mut conn, &keys, "ten_caps", 2, "t3", 60_000)
        .await
        .unwrap();
    assert_eq!(again, 0, "a released place is free again");
    app.stop().await;
}

#[tokio::test]
async fn tenants_and_their_keys_are_stored_looked_up_and_revoked() {
    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let now = now_ms();
    let tenant = TenantRecord {
        id: ids::new_id(IdKind::Tenant, Partition(0), now),
        name: "acme".into(),
        created_ms: now,
        deleting_ms: None,
        retention_ms: None,
        max_events: None,
    };
    tenants::create(&mut conn, &keys, &tenant).await.unwrap();
    assert_eq!(
        tenants::load(&mut conn, &keys, &tenant.id).await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(
        tenants::load(&mut conn, &keys, "ten_nope").await.unwrap(),
        None
    );
    let listed = tenants::ids_from(&mut conn, &keys, Some(now), 10)
        .await
        .unwrap();
    assert!(listed.contains(&tenant.id), "{listed:?}");

    tenants::add_api_key(
        &mut conn,
        &keys,
        &tenant.id,
        "key_1",
        "abc123",
        "publish,read",
        "{\"id\":\"key_1\"}",
    )
    .await
    .unwrap();
    assert_eq!(
        tenants::lookup_api_key(&mut conn, &keys, "abc123")
            .await
            .unwrap(),
        Some(format!("{} key_1 publish,read", tenant.id))
    );
    assert_eq!(
        tenants::api_key(&mut conn, &keys, &tenant.id, "key_1")
            .await
            .unwrap(),
        Some("{\"id\":\"key_1\"}".to_string())
    );
    tenants::revoke_api_key(&mut conn, &keys, &tenant.id, "key_1", "abc123")
        .await
        .unwrap();
    assert_eq!(
        tenants::lookup_api_key(&mut conn, &keys, "abc123")
            .await
            .unwrap(),
        None
    );
    assert!(tenants::api_keys(&mut conn, &keys, &tenant.id)
        .await
        .unwrap()
        .is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_worker_registry_keeps_live_workers_and_drops_silent_ones() {
    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let now = now_ms();
    workers::beat(
        &mut conn,
        &keys,
        "w_old",
        "{\"id\":\"w_old\"}",
        now - 60_000,
    )
    .await
    .unwrap();
    workers::beat(&mut conn, &keys, "w_new", "{\"id\":\"w_new\"}", now)
        .await
        .unwrap();
    let live = workers::live(&mut conn, &keys, now - 15_000).await.unwrap();
    assert_eq!(live, ["{\"id\":\"w_new\"}"]);
    // The silent one is gone from the registry, not only from the answer.
    let live = workers::live(&mut conn, &keys, 0).await.unwrap();
    assert_eq!(live, ["{\"id\":\"w_new\"}"]);
    workers::remove(&mut conn, &keys, &["w_new".to_string()])
        .await
        .unwrap();
    assert!(workers::live(&mut conn, &keys, 0).await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn notices_are_due_by_time_moved_back_in_line_and_done_once_published() {
    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let p = Partition(3);
    let _: () = redis::cmd("ZADD")
        .arg(keys.notices(p))
        .arg(1_000)
        .arg("n1")
        .arg(5_000)
        .arg("n2")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        notices::due(&mut conn, &keys, p, 2_000, 10).await.unwrap(),
        ["n1"]
    );
    notices::again(&mut conn, &keys, p, "n1", 9_000)
        .await
        .unwrap();
    assert_eq!(
        notices::due(&mut conn, &keys, p, 6_000, 10).await.unwrap(),
        ["n2"]
    );
    notices::done(&mut conn, &keys, p, "n2").await.unwrap();
    // A notice already gone is not brought back by `again`.
    notices::again(&mut conn, &keys, p, "n2", 1).await.unwrap();
    assert_eq!(
        notices::due(&mut conn, &keys, p, 10_000, 10).await.unwrap(),
        ["n1"]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retry_whose_endpoint_is_gone_reads_as_cancelled_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let event = ids::new_id(IdKind::Event, Partition(1), now_ms());
    let endpoint = ids::new_id(IdKind::Endpoint, Partition(1), now_ms());
    let delivery = ids::delivery_id(&event, &endpoint).unwrap();
    let before = app.snapshot().await;
    let (outcome, status) = retry::retry(
        &mut conn,
        &keys,
        RetryRequest {
            tenant_id: "ten_x",
            partition: Partition(1),
            delivery_id: &delivery,
            event_id: &event,
            endpoint_id: &endpoint,
            allowed: &[Retryable::Failed],
            skip_test: false,
            retention: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    // (The API finds the delivery first; without its endpoint it reads as
    // cancelled, and nothing is queued for it.)
    assert_eq!(outcome, RetryOutcome::Cancelled, "{status}");
    assert_eq!(app.snapshot().await, before, "nothing written");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_deletion_is_held_by_one_worker_and_taken_over_after_its_lease() {
    use hookfleet_common::store::tenant_deletion::{self as deletion, Phase};

    let app = TestApp::builder().spawn().await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let (tenant_id, _) = app.tenant("acme").await;
    let job = deletion::start(&mut conn, &keys, &tenant_id, 1_000)
        .await
        .unwrap();
    assert_eq!(job.phase, Phase::Access);
    // Asking again keeps the first request.
    let again = deletion::start(&mut conn, &keys, &tenant_id, 2_000)
        .await
        .unwrap();
    assert_eq!(again.requested_ms, 1_000);
    let tenant = tenants::load(&mut conn, &keys, &tenant_id).await.unwrap();
    assert_eq!(tenant.and_then(|t| t.deleting_ms), Some(1_000));

    let (taken, mut held) = deletion::take(&mut conn, &keys, 300, "first")
        .await
        .unwrap()
        .expect("a new deletion is due");
    assert_eq!(taken, tenant_id);
    assert_eq!(
        deletion::take(&mut conn, &keys, 300, "second")
            .await
            .unwrap(),
        None,
        "held while its lease runs"
    );
    held.phase = Phase::Events;
    held.events = 7;
    assert!(
        deletion::save(&mut conn, &keys, &tenant_id, "first", 300, Some(&held))
            .await
            .unwrap()
    );

    // The holder stalls past its lease; another takes over from its cursor.
    let taken_over = hookfleet_tests::wait_until(std::time::Duration::from_secs(5), || async {
        let mut conn = app.redis().await;
        deletion::take(&mut conn, &keys, 60_000, "second")
            .await
            .unwrap()
    })
    .await
    .expect("taken over once the lease expired");
    assert_eq!(taken_over.1, held, "resumed where the first left off");
    let mut stale = held.clone();
    stale.events = 99;
    assert!(
        !deletion::save(&mut conn, &keys, &tenant_id, "first", 300, Some(&stale))
            .await
            .unwrap(),
        "the first holder can no longer save"
    );
    assert_eq!(
        deletion::load(&mut conn, &keys, &tenant_id).await.unwrap(),
        Some(held)
    );
    assert!(
        deletion::save(&mut conn, &keys, &tenant_id, "second", 300, None)
            .await
            .unwrap()
    );
    assert_eq!(
        deletion::load(&mut conn, &keys, &tenant_id).await.unwrap(),
        None
    );
    app.stop().await;
}

/// `publish.lua` for one event of `tenant_id` with no endpoints, matched
/// at configuration version `checked`; its answer.
async fn publish_checked(
    app: &TestApp,
    tenant_id: &str,
    checked: Option<u64>,
) -> (i64, String, u64, String) {
    let call = checked_call(app, tenant_id, checked);
    let replies = call.invoke(&mut app.redis().await).await.unwrap();
    assert_eq!(replies.len(), 1);
    replies[0].clone()
}

/// The `publish.lua` call of [`publish_checked`], to run more than once.
fn checked_call(app: &TestApp, tenant_id: &str, checked: Option<u64>) -> publish::PublishCall {
    let home = Partition(2);
    let event_id = ids::new_id(IdKind::Event, home, now_ms());
    let data = hookfleet_common::event_data::EventData::from_json("{}").unwrap();
    let record = hookfleet_common::stored_event::EventRecord::encode_event(
        tenant_id,
        "user.created",
        false,
        &data,
        app.config.compress_above,
    );
    let (bucket, end) = ids::time_bucket(IdKind::Event, &event_id).unwrap();
    let event = publish::EventToStore {
        event_id: &event_id,
        record: &record,
        bucket,
        expire_at: end + 86_400_000,
        complete: true,
        matched: 0,
        idempotency_key: None,
        here: &[],
    };
    let settings = publish::PublishSettings {
        initial_delay_ms: 0,
        idempotency_ttl_ms: 86_400_000,
        retained_from: "evt_".into(),
    };
    publish::PublishCall::new(&app.keys(), settings, tenant_id, home, checked, &[event])
}

/// Pipelined `publish.lua` calls (single publishes gathered together) go
/// without a `SCRIPT LOAD` in front while Redis has the script; when it has
/// lost it (a restart, `SCRIPT FLUSH`), the calls are sent again after
/// loading it, and each event is stored once. On a private Redis, whose
/// command counts are this test's alone.
#[tokio::test]
async fn pipelined_publish_calls_load_the_script_only_when_redis_lost_it() {
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::builder().redis_url(url.as_str()).spawn().await;
    let (tenant_id, _key) = app.tenant("acme").await;
    let mut conn = app.redis().await;
    let new_calls = || {
        [
            checked_call(&app, &tenant_id, None),
            checked_call(&app, &tenant_id, None),
        ]
    };

    // Redis has lost the script: every call meets NOSCRIPT, the script is
    // loaded once, and the pipeline goes again.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let calls = new_calls();
    let loads = command_calls(&mut conn, "script|load").await;
    let answers = publish::PublishCall::invoke_all(&calls, &mut conn)
        .await
        .unwrap();
    assert_eq!(command_calls(&mut conn, "script|load").await, loads + 1);
    assert_eq!(answers.len(), 2);
    for answer in &answers {
        assert_eq!(answer[0].0, 1, "stored as a new event: {answer:?}");
    }
    assert_ne!(answers[0][0].1, answers[1][0].1);
    // Each was stored once: sent again, they answer as they did and write
    // nothing.
    let before = app.snapshot().await;
    let again = publish::PublishCall::invoke_all(&calls, &mut conn)
        .await
        .unwrap();
    assert_eq!(again, answers);
    assert_eq!(app.snapshot().await, before, "nothing written twice");

    // While Redis has it, no call loads it again.
    let (loads, evalshas) = (
        command_calls(&mut conn, "script|load").await,
        command_calls(&mut conn, "evalsha").await,
    );
    let answers = publish::PublishCall::invoke_all(&new_calls(), &mut conn)
        .await
        .unwrap();
    assert!(answers.iter().all(|answer| answer[0].0 == 1));
    assert_eq!(command_calls(&mut conn, "script|load").await, loads);
    assert_eq!(command_calls(&mut conn, "evalsha").await, evalshas + 2);
    app.stop().await;
}

#[tokio::test]
async fn a_publish_matched_at_an_announced_version_or_later_is_stored_an_older_one_writes_nothing()
{
    let app = TestApp::builder().spawn().await;
    let (tenant_id, _key) = app.tenant("acme").await;
    let (keys, mut conn) = (app.keys(), app.redis().await);
    let partitions = || app.config.all_partitions();
    // Nothing announced yet: any version passes.
    assert_eq!(publish_checked(&app, &tenant_id, Some(0)).await.0, 1);
    assert_eq!(
        tenant_config::announce(&mut conn, &keys, &tenant_id, partitions())
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        tenant_config::announce(&mut conn, &keys, &tenant_id, partitions())
            .await
            .unwrap(),
        Some(2)
    );
    for p in app.config.all_partitions() {
        let version: Option<String> = redis::cmd("HGET")
            .arg(keys.tenant_config_versions(p))
            .arg(&tenant_id)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            version.as_deref(),
            Some("2"),
            "announced to partition {p:?}"
        );
    }

    let before = app.snapshot().await;
    let stale = publish_checked(&app, &tenant_id, Some(1)).await;
    assert_eq!(stale, (publish::STALE, String::new(), 2, String::new()));
    assert_eq!(app.snapshot().await, before, "nothing written");
    // At the announced version, or read from Redis for it (unchecked).
    assert_eq!(publish_checked(&app, &tenant_id, Some(2)).await.0, 1);
    assert_eq!(publish_checked(&app, &tenant_id, None).await.0, 1);

    // A call that ran and is sent again (a lost reply) after a change was
    // announced answers as it did: its event was matched before it.
    let call = checked_call(&app, &tenant_id, Some(2));
    let first = call.invoke(&mut app.redis().await).await.unwrap();
    assert_eq!(first[0].0, 1);
    assert_eq!(
        tenant_config::announce(&mut conn, &keys, &tenant_id, partitions())
            .await
            .unwrap(),
        Some(3)
    );
    let before = app.snapshot().await;
    let again = call.invoke(&mut app.redis().await).await.unwrap();
    assert_eq!(again, first, "answered as it was, not stale");
    assert_eq!(app.snapshot().await, before, "nothing written again");

    // A tenant that is gone gets no hash back.
    assert_eq!(
        tenant_config::announce(&mut conn, &keys, "ten_gone", partitions())
            .await
            .unwrap(),
        None
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.tenant("ten_gone"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists);
    app.stop().await;
}
