//! Kafka protocol error codes.
//!
//! Every Kafka response carries `i16` error codes (one per response, per topic, per partition,
//! per group ... depending on the API). This module turns them into a typed [`ErrorCode`] and
//! pairs one with the broker's optional `error_message` string as a [`BrokerError`].
//!
//! The table mirrors the Java client's `org.apache.kafka.common.protocol.Errors` enum exactly:
//! the same codes, the same constant names (see [`ErrorCode::name`]) and the same default
//! messages (see [`ErrorCode::description`]). It was taken from Apache Kafka trunk of August
//! 2026, whose last change to `Errors.java` is commit `c274a7348f` (KAFKA-20395); the table ends
//! at code 136, `CONTROLLER_ID_NOT_REGISTERED`. A newer code decodes to [`ErrorCode::Unknown`]
//! and keeps its number, so nothing is lost; the Java client treats such a code as
//! `UNKNOWN_SERVER_ERROR`.
//!
//! # Why "retriable" matters
//!
//! In the Java client, a code is retriable when its exception class extends `RetriableException`
//! (directly or through, for example, `InvalidMetadataException`). Such an error is transient:
//! the same request may succeed if sent again, usually after a backoff and often after a metadata
//! refresh or after finding the coordinator again (`NOT_LEADER_OR_FOLLOWER`,
//! `COORDINATOR_LOAD_IN_PROGRESS`, `REQUEST_TIMED_OUT`, ...). Any other code is final for that
//! request: retrying it unchanged cannot help, and it has to go back to the caller or be handled
//! by the protocol (a consumer rejoining its group after `REBALANCE_IN_PROGRESS`, a producer
//! aborting after `INVALID_PRODUCER_EPOCH`). [`ErrorCode::is_retriable`] reproduces the Java
//! hierarchy bit for bit, so producers, consumers and the admin client retry exactly what the
//! Java client retries.
//!
//! ```
//! use kingest_protocol::error_code::ErrorCode;
//! let code = ErrorCode::from_code(6);
//! assert_eq!(code, ErrorCode::NotLeaderOrFollower);
//! assert_eq!(code.name(), "NOT_LEADER_OR_FOLLOWER");
//! assert!(code.is_retriable());
//!
//! let err = ErrorCode::from_code(29).check().unwrap_err();
//! assert!(!err.is_retriable());
//! assert_eq!(err.to_string(), "broker error TOPIC_AUTHORIZATION_FAILED (29, not retriable): Topic authorization failed.");
//!
//! assert!(ErrorCode::from_code(0).check().is_ok());
//! assert_eq!(ErrorCode::from_code(9999), ErrorCode::Unknown(9999));
//! ```

use std::fmt;

/// Generates [`ErrorCode`] and its lookups from one table, one line per code:
/// `Variant = code, "JAVA_NAME", retriable, "Java's default message";`
macro_rules! error_codes {
    ($(
        $(#[$meta:meta])*
        $variant:ident = $code:literal, $name:literal, $retriable:literal, $desc:literal;
    )*) => {
        /// One Kafka error code, as found in a response's `error_code` field.
        ///
        /// Decode with [`ErrorCode::from_code`], which never fails: a code missing from this
        /// table becomes [`ErrorCode::Unknown`]. Each variant's documentation gives its Java name,
        /// its number and its default message.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), "): ", $desc)]
                $(#[$meta])*
                $variant,
            )*
            /// A code this table does not know (newer than it, or not a Kafka code at all).
            ///
            /// [`ErrorCode::from_code`] only produces it for such codes; the Java client treats
            /// them as the non-retriable `UNKNOWN_SERVER_ERROR`.
            Unknown(i16),
        }

        impl ErrorCode {
            /// The error code for a raw `i16`; total, so an unknown code becomes
            /// [`ErrorCode::Unknown`] holding that number.
            pub const fn from_code(code: i16) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$variant,)*
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The raw `i16` on the wire (the held number for [`ErrorCode::Unknown`]).
            pub const fn code(self) -> i16 {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// The Java constant name, e.g. `"NOT_LEADER_OR_FOLLOWER"`; `"UNKNOWN"` for
            /// [`ErrorCode::Unknown`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// Whether the Java client's exception for this code extends `RetriableException`,
            /// i.e. whether sending the same request again (after a backoff, and usually a
            /// metadata or coordinator refresh) may succeed. `false` for [`ErrorCode::None`] and
            /// for [`ErrorCode::Unknown`], which Java treats as `UNKNOWN_SERVER_ERROR`.
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$variant => $retriable,)*
                    ErrorCode::Unknown(_) => false,
                }
            }

            /// The Java client's default message for this code. Empty for [`ErrorCode::None`],
            /// which has no message in Java either.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $desc,)*
                    ErrorCode::Unknown(_) => {
                        "An error code this client does not know; it is treated as UNKNOWN_SERVER_ERROR."
                    }
                }
            }
        }

        /// Every code in the table, in table order.
        #[cfg(test)]
        const KNOWN: &[ErrorCode] = &[$(ErrorCode::$variant),*];
    };
}

// The table, in the order of the Java `Errors` enum. Columns: variant, code, Java name,
// retriable (the Java exception extends `RetriableException`), Java's default message.
error_codes! {
        UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false, "The server experienced an unexpected error when processing the request.";
        /// No error: the request (or this part of it) succeeded.
        None = 0, "NONE", false, "";
        OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false, "The requested offset is not within the range of offsets maintained by the server.";
        CorruptMessage = 2, "CORRUPT_MESSAGE", true, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.";
        UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true, "This server does not host this topic-partition.";
        InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false, "The requested fetch size is invalid.";
        LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true, "There is no leader for this topic-partition as we are in the middle of a leadership election.";
        NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true, "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.";
        RequestTimedOut = 7, "REQUEST_TIMED_OUT", true, "The request timed out.";
        BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false, "The broker is not available.";
        ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true, "The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition.";
        MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false, "The request included a message larger than the max message size the server will accept.";
        StaleControllerEpoch = 11, "STALE_CONTROLLER_EPOCH", false, "The controller moved to another broker.";
        OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata field of the offset request was too large.";
        NetworkException = 13, "NETWORK_EXCEPTION", true, "The server disconnected before a response was received.";
        CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is loading and hence can't process requests.";
        CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true, "The coordinator is not available.";
        NotCoordinator = 16, "NOT_COORDINATOR", true, "This is not the correct coordinator.";
        InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false, "The request attempted to perform an operation on an invalid topic.";
        RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false, "The request included message batch larger than the configured segment size on the server.";
        NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true, "Messages are rejected since there are fewer in-sync replicas than required.";
        NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "Messages are written to the log, but to fewer in-sync replicas than required.";
        InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false, "Produce request specified an invalid value for required acks.";
        IllegalGeneration = 22, "ILLEGAL_GENERATION", false, "Specified group generation id is not valid.";
        InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.";
        InvalidGroupId = 24, "INVALID_GROUP_ID", false, "The group id is invalid.";
        UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false, "The coordinator is not aware of this member.";
        InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false, "The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms).";
        RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing, so a rejoin is needed.";
        InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false, "The committing offset data size is not valid.";
        TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false, "Topic authorization failed.";
        GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false, "Group authorization failed.";
        ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false, "Cluster authorization failed.";
        InvalidTimestamp = 32, "INVALID_TIMESTAMP", false, "The timestamp of the message is out of acceptable range.";
        UnsupportedSaslMechanism = 33, "UNSUPPORTED_SASL_MECHANISM", false, "The broker does not support the requested SASL mechanism.";
        IllegalSaslState = 34, "ILLEGAL_SASL_STATE", false, "Request is not valid given the current SASL state.";
        UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false, "The version of API is not supported.";
        TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false, "Topic with this name already exists.";
        InvalidPartitions = 37, "INVALID_PARTITIONS", false, "Number of partitions is below 1.";
        InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false, "Replication factor is below 1 or larger than the number of available brokers.";
        InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false, "Replica assignment is invalid.";
        InvalidConfig = 40, "INVALID_CONFIG", false, "Configuration is invalid.";
        NotController = 41, "NOT_CONTROLLER", true, "This is not the correct controller for this cluster.";
        InvalidRequest = 42, "INVALID_REQUEST", false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.";
        UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The message format version on the broker does not support the request.";
        PolicyViolation = 44, "POLICY_VIOLATION", false, "Request parameters do not satisfy the configured policy.";
        OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker received an out of order sequence number.";
        DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker received a duplicate sequence number.";
        InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false, "Producer attempted to produce with an old epoch.";
        InvalidTxnState = 48, "INVALID_TXN_STATE", false, "The producer attempted a transactional operation in an invalid state.";
        InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer attempted to use a producer id which is not currently assigned to its transactional id.";
        InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).";
        ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.";
        TransactionCoordinatorFenced = 52, "TRANSACTION_COORDINATOR_FENCED", false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.";
        TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Transactional Id authorization failed.";
        SecurityDisabled = 54, "SECURITY_DISABLED", false, "Security features are disabled.";
        OperationNotAttempted = 55, "OPERATION_NOT_ATTEMPTED", false, "The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest.";
        KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true, "Disk error when trying to access log file on the disk.";
        LogDirNotFound = 57, "LOG_DIR_NOT_FOUND", false, "The user-specified log directory is not found in the broker config.";
        SaslAuthenticationFailed = 58, "SASL_AUTHENTICATION_FAILED", false, "SASL Authentication failed.";
        UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception.";
        ReassignmentInProgress = 60, "REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is in progress.";
        DelegationTokenAuthDisabled = 61, "DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation Token feature is not enabled.";
        DelegationTokenNotFound = 62, "DELEGATION_TOKEN_NOT_FOUND", false, "Delegation Token is not found on server.";
        DelegationTokenOwnerMismatch = 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false, "Specified Principal is not valid Owner/Renewer.";
        DelegationTokenRequestNotAllowed = 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels.";
        DelegationTokenAuthorizationFailed = 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "Delegation Token authorization failed.";
        DelegationTokenExpired = 66, "DELEGATION_TOKEN_EXPIRED", false, "Delegation Token is expired.";
        InvalidPrincipalType = 67, "INVALID_PRINCIPAL_TYPE", false, "Supplied principalType is not supported.";
        NonEmptyGroup = 68, "NON_EMPTY_GROUP", false, "The group is not empty.";
        GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false, "The group id does not exist.";
        FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true, "The fetch session ID was not found.";
        InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch is invalid.";
        ListenerNotFound = 72, "LISTENER_NOT_FOUND", true, "There is no listener on the leader broker that matches the listener on which metadata request was processed.";
        TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false, "Topic deletion is disabled.";
        FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true, "The leader epoch in the request is older than the epoch on the broker.";
        UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true, "The leader epoch in the request is newer than the epoch on the broker.";
        UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The requesting client does not support the compression type of given partition.";
        StaleBrokerEpoch = 77, "STALE_BROKER_EPOCH", false, "Broker epoch has changed.";
        OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.";
        MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false, "The group member needs to have a valid member id before actually entering a consumer group.";
        PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred leader was not available.";
        GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false, "The group has reached its maximum size.";
        FencedInstanceId = 82, "FENCED_INSTANCE_ID", false, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.";
        EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "Eligible topic partition leaders are not available.";
        ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true, "Leader election not needed for topic partition.";
        NoReassignmentInProgress = 85, "NO_REASSIGNMENT_IN_PROGRESS", false, "No partition reassignment is in progress.";
        GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.";
        InvalidRecord = 87, "INVALID_RECORD", false, "This record has failed the validation on broker and hence will be rejected.";
        UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true, "There are unstable offsets that need to be cleared.";
        ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true, "The throttling quota has been exceeded.";
        ProducerFenced = 90, "PRODUCER_FENCED", false, "There is a newer producer with the same transactionalId which fences the current one.";
        ResourceNotFound = 91, "RESOURCE_NOT_FOUND", false, "A request illegally referred to a resource that does not exist.";
        DuplicateResource = 92, "DUPLICATE_RESOURCE", false, "A request illegally referred to the same resource twice.";
        UnacceptableCredential = 93, "UNACCEPTABLE_CREDENTIAL", false, "Requested credential would not meet criteria for acceptability.";
        InconsistentVoterSet = 94, "INCONSISTENT_VOTER_SET", false, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters.";
        InvalidUpdateVersion = 95, "INVALID_UPDATE_VERSION", false, "The given update version was invalid.";
        FeatureUpdateFailed = 96, "FEATURE_UPDATE_FAILED", false, "Unable to update finalized features due to an unexpected server error.";
        PrincipalDeserializationFailure = 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false, "Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup.";
        SnapshotNotFound = 98, "SNAPSHOT_NOT_FOUND", false, "Requested snapshot was not found.";
        PositionOutOfRange = 99, "POSITION_OUT_OF_RANGE", false, "Requested position is not greater than or equal to zero, and less than the size of the snapshot.";
        UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true, "This server does not host this topic ID.";
        DuplicateBrokerRegistration = 101, "DUPLICATE_BROKER_REGISTRATION", false, "This broker ID is already in use.";
        BrokerIdNotRegistered = 102, "BROKER_ID_NOT_REGISTERED", false, "The given broker ID was not registered.";
        InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true, "The log's topic ID did not match the topic ID in the request.";
        InconsistentClusterId = 104, "INCONSISTENT_CLUSTER_ID", false, "The clusterId in the request does not match that found on the server.";
        TransactionalIdNotFound = 105, "TRANSACTIONAL_ID_NOT_FOUND", false, "The transactionalId could not be found.";
        FetchSessionTopicIdError = 106, "FETCH_SESSION_TOPIC_ID_ERROR", true, "The fetch session encountered inconsistent topic ID usage.";
        IneligibleReplica = 107, "INELIGIBLE_REPLICA", false, "The new ISR contains at least one ineligible replica.";
        NewLeaderElected = 108, "NEW_LEADER_ELECTED", false, "The AlterPartition request successfully updated the partition state but the leader has changed.";
        OffsetMovedToTieredStorage = 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false, "The requested offset is moved to tiered storage.";
        FencedMemberEpoch = 110, "FENCED_MEMBER_EPOCH", false, "The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin.";
        UnreleasedInstanceId = 111, "UNRELEASED_INSTANCE_ID", false, "The instance ID is still used by another member in the consumer group. That member must leave first.";
        UnsupportedAssignor = 112, "UNSUPPORTED_ASSIGNOR", false, "The assignor or its version range is not supported by the consumer group.";
        StaleMemberEpoch = 113, "STALE_MEMBER_EPOCH", false, "The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API.";
        MismatchedEndpointType = 114, "MISMATCHED_ENDPOINT_TYPE", false, "The request was sent to an endpoint of the wrong type.";
        UnsupportedEndpointType = 115, "UNSUPPORTED_ENDPOINT_TYPE", false, "This endpoint type is not supported yet.";
        UnknownControllerId = 116, "UNKNOWN_CONTROLLER_ID", false, "This controller ID is not known.";
        UnknownSubscriptionId = 117, "UNKNOWN_SUBSCRIPTION_ID", false, "Client sent a push telemetry request with an invalid or outdated subscription ID.";
        TelemetryTooLarge = 118, "TELEMETRY_TOO_LARGE", false, "Client sent a push telemetry request larger than the maximum size the broker will accept.";
        InvalidRegistration = 119, "INVALID_REGISTRATION", false, "The controller has considered the broker registration to be invalid.";
        TransactionAbortable = 120, "TRANSACTION_ABORTABLE", false, "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.";
        InvalidRecordState = 121, "INVALID_RECORD_STATE", false, "The record state is invalid. The acknowledgement of delivery could not be completed.";
        ShareSessionNotFound = 122, "SHARE_SESSION_NOT_FOUND", true, "The share session was not found.";
        InvalidShareSessionEpoch = 123, "INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch is invalid.";
        FencedStateEpoch = 124, "FENCED_STATE_EPOCH", false, "The coordinator rejected the request because the state epoch did not match.";
        InvalidVoterKey = 125, "INVALID_VOTER_KEY", false, "The voter key doesn't match the receiving replica's key.";
        DuplicateVoter = 126, "DUPLICATE_VOTER", false, "The voter is already part of the set of voters.";
        VoterNotFound = 127, "VOTER_NOT_FOUND", false, "The voter is not part of the set of voters.";
        InvalidRegularExpression = 128, "INVALID_REGULAR_EXPRESSION", false, "The regular expression is not valid.";
        RebootstrapRequired = 129, "REBOOTSTRAP_REQUIRED", false, "Client metadata is stale. The client should rebootstrap to obtain new metadata.";
        StreamsInvalidTopology = 130, "STREAMS_INVALID_TOPOLOGY", false, "The supplied topology is invalid.";
        StreamsInvalidTopologyEpoch = 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false, "The supplied topology epoch is invalid.";
        StreamsTopologyFenced = 132, "STREAMS_TOPOLOGY_FENCED", false, "The supplied topology epoch is outdated.";
        ShareSessionLimitReached = 133, "SHARE_SESSION_LIMIT_REACHED", true, "The limit of share sessions has been reached.";
        GroupDeletionFailed = 134, "GROUP_DELETION_FAILED", false, "DeleteGroups could not complete; see the error message on the per-group result for details.";
        StreamsTopologyDescriptionUpdateFailed = 135, "STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED", false, "The broker could not process the topology description update; see the error message for details.";
        ControllerIdNotRegistered = 136, "CONTROLLER_ID_NOT_REGISTERED", false, "The given controller ID was not registered.";
}

impl ErrorCode {
    /// Whether this is code 0, i.e. no error.
    pub const fn is_ok(self) -> bool {
        self.code() == 0
    }

    /// `Ok(())` for [`ErrorCode::None`], otherwise a [`BrokerError`] carrying this code and no
    /// broker message.
    pub fn check(self) -> Result<(), BrokerError> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(BrokerError::new(self, None))
        }
    }
}

impl fmt::Display for ErrorCode {
    /// `NOT_LEADER_OR_FOLLOWER (6): <description>`, or just `NONE (0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())?;
        match self.description() {
            "" => Ok(()),
            description => write!(f, ": {description}"),
        }
    }
}

/// An error a broker returned: the code plus the broker's own message (Kafka responses carry an
/// optional `error_message` string next to many of their error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BrokerError {
    /// The error code.
    pub code: ErrorCode,
    /// The broker's message, when the response carried one; it is usually more specific than
    /// [`ErrorCode::description`].
    pub message: Option<String>,
}

impl BrokerError {
    /// An error for `code`, with the broker's `message` if the response had one.
    pub fn new(code: ErrorCode, message: Option<String>) -> Self {
        BrokerError { code, message }
    }

    /// Whether the request may succeed if sent again; see [`ErrorCode::is_retriable`].
    pub fn is_retriable(&self) -> bool {
        self.code.is_retriable()
    }
}

impl fmt::Display for BrokerError {
    /// `broker error NOT_LEADER_OR_FOLLOWER (6, retriable): <broker message, else description>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retriable = if self.is_retriable() {
            "retriable"
        } else {
            "not retriable"
        };
        let message = self.message.as_deref().unwrap_or(self.code.description());
        write!(
            f,
            "broker error {} ({}, {}): {}",
            self.code.name(),
            self.code.code(),
            retriable,
            message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The highest code in Apache Kafka trunk when this table was written.
    const HIGHEST: i16 = 136;

    #[test]
    fn known_codes_round_trip() {
        for code in -1..=200i16 {
            let error = ErrorCode::from_code(code);
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(ErrorCode::from_code(error.code()), error);
            let known = !matches!(error, ErrorCode::Unknown(_));
            assert_eq!(known, code <= HIGHEST, "code {code}");
            assert_eq!(known, KNOWN.contains(&error), "code {code}");
        }
        for &error in KNOWN {
            assert_eq!(ErrorCode::from_code(error.code()), error);
        }
    }

    #[test]
    fn table_is_contiguous_from_minus_one() {
        let codes: Vec<i16> = KNOWN.iter().map(|e| e.code()).collect();
        assert_eq!(codes, (-1..=HIGHEST).collect::<Vec<_>>());
    }

    #[test]
    fn unknown_codes_round_trip() {
        for code in [-2, HIGHEST + 1, 201, 1000, i16::MIN, i16::MAX] {
            let error = ErrorCode::from_code(code);
            assert_eq!(error, ErrorCode::Unknown(code));
            assert_eq!(error.code(), code);
            assert_eq!(error.name(), "UNKNOWN");
            assert!(!error.is_retriable());
            assert!(!error.is_ok());
            assert!(!error.description().is_empty());
            assert_eq!(error.check(), Err(BrokerError::new(error, None)));
        }
    }

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<i16> = KNOWN.iter().map(|e| e.code()).collect();
        let names: HashSet<&str> = KNOWN.iter().map(|e| e.name()).collect();
        assert_eq!(codes.len(), KNOWN.len());
        assert_eq!(names.len(), KNOWN.len());
        assert!(!names.contains("UNKNOWN"));
    }

    #[test]
    fn names_match_variants() {
        for &error in KNOWN {
            let camel: String = error
                .name()
                .split('_')
                .map(|word| word[..1].to_owned() + &word[1..].to_ascii_lowercase())
                .collect();
            assert_eq!(camel, format!("{error:?}"));
            let description = error.description();
            assert_eq!(
                description.is_empty(),
                error == ErrorCode::None,
                "{error:?}"
            );
            assert!(
                description.is_empty() || description.ends_with('.'),
                "{error:?}"
            );
        }
    }

    #[test]
    fn retriable_spot_checks() {
        let expected = [
            (6, "NOT_LEADER_OR_FOLLOWER", true),
            (3, "UNKNOWN_TOPIC_OR_PARTITION", true),
            (1, "OFFSET_OUT_OF_RANGE", false),
            (7, "REQUEST_TIMED_OUT", true),
            (16, "NOT_COORDINATOR", true),
            (14, "COORDINATOR_LOAD_IN_PROGRESS", true),
            (29, "TOPIC_AUTHORIZATION_FAILED", false),
            (-1, "UNKNOWN_SERVER_ERROR", false),
            (74, "FENCED_LEADER_EPOCH", true),
            (75, "UNKNOWN_LEADER_EPOCH", true),
            (2, "CORRUPT_MESSAGE", true),
            (13, "NETWORK_EXCEPTION", true),
            (19, "NOT_ENOUGH_REPLICAS", true),
            (88, "UNSTABLE_OFFSET_COMMIT", true),
            (27, "REBALANCE_IN_PROGRESS", false),
            (22, "ILLEGAL_GENERATION", false),
            (25, "UNKNOWN_MEMBER_ID", false),
            (47, "INVALID_PRODUCER_EPOCH", false),
            (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false),
            (90, "PRODUCER_FENCED", false),
            (89, "THROTTLING_QUOTA_EXCEEDED", true),
            (0, "NONE", false),
            (41, "NOT_CONTROLLER", true),
            (51, "CONCURRENT_TRANSACTIONS", true),
            (56, "KAFKA_STORAGE_ERROR", true),
            (133, "SHARE_SESSION_LIMIT_REACHED", true),
            (129, "REBOOTSTRAP_REQUIRED", false),
        ];
        for (code, name, retriable) in expected {
            let error = ErrorCode::from_code(code);
            assert_eq!(error.name(), name);
            assert_eq!(error.is_retriable(), retriable, "{name}");
        }
        let retriable = KNOWN.iter().filter(|e| e.is_retriable()).count();
        assert_eq!(retriable, 32);
    }

    #[test]
    fn none_is_ok() {
        assert!(ErrorCode::None.is_ok());
        assert_eq!(ErrorCode::None.check(), Ok(()));
        assert_eq!(ErrorCode::from_code(0), ErrorCode::None);
        for &error in KNOWN.iter().filter(|&&e| e != ErrorCode::None) {
            assert!(!error.is_ok());
            assert_eq!(
                error.check(),
                Err(BrokerError {
                    code: error,
                    message: None
                })
            );
        }
    }

    #[test]
    fn display() {
        assert_eq!(
            ErrorCode::RequestTimedOut.to_string(),
            "REQUEST_TIMED_OUT (7): The request timed out."
        );
        assert_eq!(ErrorCode::None.to_string(), "NONE (0)");
        assert!(ErrorCode::Unknown(4242)
            .to_string()
            .starts_with("UNKNOWN (4242): "));

        let plain = ErrorCode::NotLeaderOrFollower.check().unwrap_err();
        assert_eq!(
            plain.to_string(),
            format!(
                "broker error NOT_LEADER_OR_FOLLOWER (6, retriable): {}",
                ErrorCode::NotLeaderOrFollower.description()
            )
        );
        let with_message = BrokerError::new(
            ErrorCode::from_code(29),
            Some("Not authorized to access topics: [t]".to_owned()),
        );
        assert!(!with_message.is_retriable());
        assert_eq!(
            with_message.to_string(),
            "broker error TOPIC_AUTHORIZATION_FAILED (29, not retriable): \
             Not authorized to access topics: [t]"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(with_message);
        assert!(boxed.source().is_none());
    }
}
