//! Committing offsets for a consumer group from outside it, as `kafka-consumer-groups.sh
//! --reset-offsets --execute` does: an OffsetCommit with no member id and generation -1, which
//! the coordinator accepts only while the group has no members (it answers
//! `UNKNOWN_MEMBER_ID` or `ILLEGAL_GENERATION` otherwise, so a job that started in between is
//! not overridden behind its back).

use std::collections::HashMap;
use std::time::Duration;

use kingest_client::admin::Admin;
use kingest_client::group::member::offset_commit_topics;
use kingest_client::{Client, ClientError};
use kingest_protocol::kafka_protocol::messages::{GroupId, OffsetCommitRequest};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

/// Attempts while the coordinator moves or loads.
const ATTEMPTS: usize = 5;

fn coordinator_moving(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
    )
}

/// Commits `offsets` (the next offset to read, per partition) for `group`, which must have
/// no members (see the module docs).
pub async fn commit_as_admin(
    client: &Client,
    group: &str,
    offsets: &HashMap<(String, i32), i64>,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let admin = Admin::new(client.clone());
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(offset_commit_topics(offsets, Some("kingest reset-offsets")));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let conn = admin.find_coordinator(group, 0).await?;
        // Versions 9+ are for the KIP-848 protocol's member epochs.
        let version = conn
            .versions()
            .negotiate_capped::<OffsetCommitRequest>(8)
            .map_err(|source| ClientError::Protocol {
                broker: conn.broker().clone(),
                api: "OffsetCommit",
                source,
            })?;
        let response = conn.send_version(version, &request).await?;
        let mut failure = None;
        let mut moving = false;
        for t in &response.topics {
            for p in &t.partitions {
                let code = ErrorCode::from_code(p.error_code);
                if code.is_ok() {
                    continue;
                }
                moving |= coordinator_moving(code);
                failure.get_or_insert_with(|| ClientError::Partition {
                    broker: conn.broker().clone(),
                    api: "OffsetCommit",
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    source: BrokerError::new(code, None),
                });
            }
        }
        match failure {
            None => return Ok(()),
            Some(_) if moving && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
            Some(e) => return Err(e),
        }
    }
}
