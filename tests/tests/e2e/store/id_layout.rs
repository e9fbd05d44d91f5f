//! The scripts slice ids by a layout generated from `ids.rs`
//! (`store::id_layout`); run in Redis's Lua, it must cut every id exactly
//! where `ids.rs` does, so a change of the id format reaches the scripts
//! or fails here.

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store;
use hookfleet_tests::TestApp;

#[tokio::test]
async fn the_scripts_id_layout_cuts_ids_where_ids_rs_does() {
    let app = TestApp::builder().spawn().await;
    let script = redis::Script::new(&format!(
        "{}return {{\
            string.sub(ARGV[1], DLV_EVENT, DLV_EVENT_END),\
            string.sub(ARGV[1], DLV_ENDPOINT),\
            string.sub(ARGV[1], DLV_BODY, DLV_BUCKET_END),\
            string.sub(ARGV[1], DLV_BODY),\
            string.sub(ARGV[2], EVT_BODY),\
            string.sub(ARGV[2], EVT_BODY, EVT_BUCKET_END),\
            string.sub(ARGV[2], -ID_PARTITION),\
            string.sub(ARGV[3], EP_BODY)}}",
        store::id_layout()
    ));
    let mut conn = app.redis().await;
    for (at, p, q) in [
        (1_700_000_000_000u64, 0u16, 1023u16),
        (5, 17, 3),
        (1_999_999_999_999, 511, 0),
    ] {
        let event = ids::new_id(IdKind::Event, Partition(p), at);
        let endpoint = ids::new_id(IdKind::Endpoint, Partition(q), at + 1);
        let delivery = ids::delivery_id(&event, &endpoint).expect("a delivery id");
        let cut: Vec<String> = script
            .arg(&delivery)
            .arg(&event)
            .arg(&endpoint)
            .invoke_async(&mut conn)
            .await
            .expect("the layout runs in Lua");
        let (event_of, endpoint_of) = ids::delivery_parts(&delivery).expect("its parts");
        let (bucket, _) = ids::time_bucket(IdKind::Event, &event).expect("a bucket");
        assert_eq!(format!("evt_{}", cut[0]), event_of, "the delivery's event");
        assert_eq!(
            format!("ep_{}", cut[1]),
            endpoint_of,
            "the delivery's endpoint"
        );
        assert_eq!(cut[2], bucket, "a delivery's bucket is its event's");
        assert_eq!(format!("dlv_{}", cut[3]), delivery, "the delivery's body");
        assert_eq!(
            format!("dlv_{}{}", cut[4], cut[7]),
            delivery,
            "a delivery id from its event and endpoint"
        );
        assert_eq!(cut[5], bucket, "an event's bucket");
        assert_eq!(
            cut[6],
            ids::partition_code(Partition(p)),
            "an event's partition"
        );
    }
    app.stop().await;
}
