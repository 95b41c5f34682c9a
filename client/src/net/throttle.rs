//! Broker throttle times (KIP-219): a broker over a quota answers at once with a throttle time
//! and mutes the connection for that long; the client must not send to it before the time is up.

use kingest_protocol::kafka_protocol::messages::*;

/// A response that may carry a throttle time.
pub trait ThrottleTime {
    /// The throttle time in milliseconds (0 when not throttled).
    fn throttle_time_ms(&self) -> i32;
}

macro_rules! throttled {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleTime for $t {
            fn throttle_time_ms(&self) -> i32 {
                self.throttle_time_ms
            }
        })*
    };
}

macro_rules! never_throttled {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleTime for $t {
            fn throttle_time_ms(&self) -> i32 {
                0
            }
        })*
    };
}

throttled!(
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    SyncGroupResponse,
    DescribeGroupsResponse,
    ListGroupsResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DeleteRecordsResponse,
    InitProducerIdResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    CreatePartitionsResponse,
    DeleteGroupsResponse,
    DescribeClusterResponse,
    OffsetDeleteResponse,
    OffsetForLeaderEpochResponse,
    IncrementalAlterConfigsResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
);

never_throttled!(SaslHandshakeResponse, SaslAuthenticateResponse);
