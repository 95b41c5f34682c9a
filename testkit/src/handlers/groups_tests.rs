//! Tests of the classic group handlers: OffsetFetch in both response layouts.
use std::net::SocketAddr;
use std::sync::Mutex;

use kingest_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;

use super::*;
use crate::server::sasl::SaslSession;
use crate::ClusterConfig;

/// A cluster whose group "g" has committed t-0 at 5 (metadata "m") and t-1 at 7.
fn ctx() -> Ctx {
    let mut state = ClusterState::new("test".into(), 1 << 20);
    let mut g = Group::default();
    g.offsets.insert(("t".into(), 0), (5, Some("m".into())));
    g.offsets.insert(("t".into(), 1), (7, None));
    state.groups.insert("g".into(), g);
    Ctx {
        broker: 1,
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        shared: Arc::new(Shared {
            state: Mutex::new(state),
            appended: tokio::sync::Notify::new(),
            sessions: Mutex::new(Default::default()),
            faults: Default::default(),
            sasl_logins: Default::default(),
            sasl: None,
            tls: None,
            config: ClusterConfig::default(),
        }),
        sasl: SaslSession::new(false),
        client_id: "test".into(),
    }
}

/// (topic, partition, offset, metadata, error code).
type Row = (String, i32, i64, Option<String>, i16);
type Rows = Vec<Row>;

/// A row of topic "t" without error.
fn row(partition: i32, offset: i64, metadata: Option<&str>) -> Row {
    (
        "t".into(),
        partition,
        offset,
        metadata.map(str::to_owned),
        0,
    )
}

/// The sorted rows of the topics of either layout (the same fields, other type names).
macro_rules! rows {
    ($topics:expr) => {{
        let mut rows: Rows = $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let metadata = p.metadata.as_ref().map(|m| m.to_string());
                    let name = t.name.0.to_string();
                    (
                        name,
                        p.partition_index,
                        p.committed_offset,
                        metadata,
                        p.error_code,
                    )
                })
            })
            .collect();
        rows.sort();
        rows
    }};
}

/// Both response layouts (v8+ per group, older top level) carry the same offsets, for the
/// partitions asked for and for all committed ones.
#[test]
fn offset_fetch_answers_alike_in_both_layouts() {
    let ctx = ctx();
    let group = GroupId(StrBytes::from_static_str("g"));
    let name = TopicName(StrBytes::from_static_str("t"));
    let asked = vec![row(0, 5, Some("m")), row(1, 7, None), row(2, -1, None)];
    let committed = asked[..2].to_vec();

    for (topics, expected) in [(Some(vec![0, 1, 2]), &asked), (None, &committed)] {
        let old = OffsetFetchRequest::default()
            .with_group_id(group.clone())
            .with_topics(topics.clone().map(|parts| {
                vec![OffsetFetchRequestTopic::default()
                    .with_name(name.clone())
                    .with_partition_indexes(parts)]
            }));
        assert_eq!(&rows!(offset_fetch(&ctx, 7, old).topics), expected);

        let grouped =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group.clone())
                .with_topics(topics.map(|parts| {
                    vec![OffsetFetchRequestTopics::default()
                        .with_name(name.clone())
                        .with_partition_indexes(parts)]
                }))]);
        let response = offset_fetch(&ctx, 8, grouped);
        assert_eq!(response.groups.len(), 1);
        assert_eq!(response.groups[0].group_id, group);
        assert_eq!(&rows!(response.groups[0].topics), expected);
    }
}
