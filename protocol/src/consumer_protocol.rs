//! The "consumer" protocol type's embedded formats: what a member puts in JoinGroup's protocol
//! metadata ([`Subscription`]) and what the leader puts in SyncGroup's assignments
//! ([`Assignment`]).
//!
//! Both are a big-endian `i16` version followed by the body of `ConsumerProtocolSubscription` or
//! `ConsumerProtocolAssignment` (versions 0-3, non-flexible), encoded here with the
//! `kafka-protocol` crate's generated types. The rules follow Java's `ConsumerProtocol`:
//!
//! - writing sorts the topics and the owned partitions (so that the bytes, which the broker
//!   compares to decide whether a member's metadata changed, do not depend on set order), and
//!   groups assigned partitions by topic in order of first appearance;
//! - reading a version newer than 3 reads it as version 3 and ignores whatever follows: new
//!   versions may only append fields, so an older reader still gets everything it understands;
//! - a negative version, a truncated body or bad UTF-8 is a [`ConsumerProtocolError`], never a
//!   panic (the bytes come from other members, through the broker, and may be anything; the
//!   `consumer_protocol` fuzz target feeds it anything).
//!
//! It lives in the protocol crate because a broker reads it too (testkit's coordinator decodes
//! subscriptions to describe groups), and the client's group members and assignors use it from
//! here.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_assignment, consumer_protocol_subscription, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use thiserror::Error;

use std::cmp::Ordering;

/// Java's `String.compareTo`: UTF-16 code unit order, which differs from Rust's (code point)
/// order for characters beyond U+FFFF. Java's `ConsumerProtocol` writes topics in this order,
/// and its assignors sort topics and members by it.
pub fn java_string_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The protocol type consumers give in JoinGroup.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The highest version of both formats that we know (and write by default).
pub const HIGHEST_VERSION: i16 = 3;

/// Reading or writing consumer protocol bytes failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConsumerProtocolError {
    /// Fewer than the two bytes of the version header.
    #[error("consumer protocol {what}: {len} byte(s), too short for the version header")]
    MissingVersion {
        /// "subscription" or "assignment".
        what: &'static str,
        /// How many bytes there were.
        len: usize,
    },
    /// A negative version (Java rejects those too; versions above ours are read as ours).
    #[error("consumer protocol {what}: unsupported version {version}")]
    UnsupportedVersion {
        /// "subscription" or "assignment".
        what: &'static str,
        /// The version found or asked for.
        version: i16,
    },
    /// The body does not parse (truncated, negative lengths, bad UTF-8...).
    #[error("consumer protocol {what} version {version} is malformed: {reason}")]
    Malformed {
        /// "subscription" or "assignment".
        what: &'static str,
        /// The version the body was read as.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
    /// A value cannot be represented (a string longer than 32767 bytes...).
    #[error("cannot encode consumer protocol {what}: {reason}")]
    Encode {
        /// "subscription" or "assignment".
        what: &'static str,
        /// What the encoder said.
        reason: String,
    },
}

/// One member's subscription as the leader's assignor sees it: the decoded JoinGroup metadata
/// plus the member's `group.instance.id`, which travels in the JoinGroup response rather than in
/// the metadata bytes.
///
/// Java's `ConsumerPartitionAssignor.Subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The topics the member wants (written sorted).
    pub topics: Vec<String>,
    /// Assignor-specific bytes; `None` is distinct from empty on the wire.
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (version 1+): all of its assignment under the
    /// cooperative protocol, nothing under the eager one (it revoked everything before joining).
    pub owned_partitions: Vec<(String, i32)>,
    /// The generation the member's owned partitions belong to (version 2+); `None` when the
    /// member has none. Negative values mean none, as in Java.
    pub generation_id: Option<i32>,
    /// The member's static `group.instance.id` (KIP-345), from the JoinGroup response.
    pub group_instance_id: Option<String>,
    /// The member's `client.rack` (version 3+); an empty rack reads as `None`.
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics` with nothing else set.
    pub fn new<T: Into<String>>(topics: impl IntoIterator<Item = T>) -> Self {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Encodes at [`HIGHEST_VERSION`], as Java's `ConsumerProtocol.serializeSubscription`.
    pub fn encode(&self) -> Result<Bytes, ConsumerProtocolError> {
        self.encode_version(HIGHEST_VERSION)
    }

    /// Encodes at `version` (fields the version lacks are left out; a version above
    /// [`HIGHEST_VERSION`] writes [`HIGHEST_VERSION`], as Java does).
    pub fn encode_version(&self, version: i16) -> Result<Bytes, ConsumerProtocolError> {
        const WHAT: &str = "subscription";
        let version = check_version(WHAT, version)?;
        let mut topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        topics.sort_by(|a, b| java_string_order(a, b));
        let mut owned: Vec<(&str, i32)> = self
            .owned_partitions
            .iter()
            .map(|(t, p)| (t.as_str(), *p))
            .collect();
        owned.sort_by(|a, b| java_string_order(a.0, b.0).then(a.1.cmp(&b.1)));
        // Sorted, so each topic's partitions are adjacent: one entry per run.
        let mut owned_entries: Vec<consumer_protocol_subscription::TopicPartition> = Vec::new();
        for (topic, partition) in owned {
            match owned_entries.last_mut() {
                Some(entry) if entry.topic.0.as_str() == topic => entry.partitions.push(partition),
                _ => owned_entries.push(
                    consumer_protocol_subscription::TopicPartition::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let body = ConsumerProtocolSubscription::default()
            .with_topics(
                topics
                    .into_iter()
                    .map(|t| StrBytes::from_string(t.to_owned()))
                    .collect(),
            )
            .with_user_data(self.user_data.clone())
            .with_owned_partitions(owned_entries)
            .with_generation_id(self.generation_id.filter(|g| *g >= 0).unwrap_or(-1))
            .with_rack_id(self.rack_id.clone().map(StrBytes::from_string));
        encode_prefixed(WHAT, version, &body)
    }

    /// Decodes version-prefixed bytes, as Java's `ConsumerProtocol.deserializeSubscription`.
    /// `group_instance_id` is left `None`: the caller fills it in from the JoinGroup response.
    pub fn decode(bytes: &Bytes) -> Result<Self, ConsumerProtocolError> {
        let (version, body) = split_version("subscription", bytes)?;
        Self::decode_body(version, body)
    }

    /// Decodes a body written at `version` (without the prefix).
    fn decode_body(version: i16, mut body: Bytes) -> Result<Self, ConsumerProtocolError> {
        const WHAT: &str = "subscription";
        let read_as = check_version(WHAT, version)?;
        let data = ConsumerProtocolSubscription::decode(&mut body, read_as).map_err(|e| {
            ConsumerProtocolError::Malformed {
                what: WHAT,
                version: read_as,
                reason: format!("{e:#}"),
            }
        })?;
        Ok(Subscription {
            topics: data.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            user_data: data.user_data,
            owned_partitions: flatten(
                data.owned_partitions
                    .iter()
                    .map(|tp| (tp.topic.0.as_str(), &tp.partitions[..])),
            ),
            generation_id: Some(data.generation_id).filter(|g| *g >= 0),
            group_instance_id: None,
            rack_id: data
                .rack_id
                .filter(|r| !r.is_empty())
                .map(|r| r.as_str().to_owned()),
        })
    }
}

/// What the leader gives one member: Java's `ConsumerPartitionAssignor.Assignment`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The partitions, in the assignor's order.
    pub partitions: Vec<(String, i32)>,
    /// Assignor-specific bytes (none of the built-in assignors uses them).
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` with no user data.
    pub fn new(partitions: Vec<(String, i32)>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }

    /// Encodes at [`HIGHEST_VERSION`], as Java's `ConsumerProtocol.serializeAssignment`.
    pub fn encode(&self) -> Result<Bytes, ConsumerProtocolError> {
        self.encode_version(HIGHEST_VERSION)
    }

    /// Encodes at `version` (all versions share one layout; only the number differs).
    pub fn encode_version(&self, version: i16) -> Result<Bytes, ConsumerProtocolError> {
        const WHAT: &str = "assignment";
        let version = check_version(WHAT, version)?;
        // One entry per topic, in order of first appearance, partitions in list order: what
        // Java's `assignedPartitions().find(topic)` grouping produces.
        let mut entries: Vec<consumer_protocol_assignment::TopicPartition> = Vec::new();
        for (topic, partition) in &self.partitions {
            match entries
                .iter_mut()
                .find(|e| e.topic.0.as_str() == topic.as_str())
            {
                Some(entry) => entry.partitions.push(*partition),
                None => entries.push(
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![*partition]),
                ),
            }
        }
        let body = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(entries)
            .with_user_data(self.user_data.clone());
        encode_prefixed(WHAT, version, &body)
    }

    /// Decodes version-prefixed bytes, as Java's `ConsumerProtocol.deserializeAssignment`.
    pub fn decode(bytes: &Bytes) -> Result<Self, ConsumerProtocolError> {
        const WHAT: &str = "assignment";
        let (version, mut body) = split_version(WHAT, bytes)?;
        let read_as = check_version(WHAT, version)?;
        let data = ConsumerProtocolAssignment::decode(&mut body, read_as).map_err(|e| {
            ConsumerProtocolError::Malformed {
                what: WHAT,
                version: read_as,
                reason: format!("{e:#}"),
            }
        })?;
        Ok(Assignment {
            partitions: flatten(
                data.assigned_partitions
                    .iter()
                    .map(|tp| (tp.topic.0.as_str(), &tp.partitions[..])),
            ),
            user_data: data.user_data,
        })
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn flatten<'a>(entries: impl Iterator<Item = (&'a str, &'a [i32])>) -> Vec<(String, i32)> {
    entries
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.to_owned(), *p)))
        .collect()
}

/// Java's `checkSubscriptionVersion`/`checkAssignmentVersion`: negative is an error, anything
/// above what we know is read (and written) with our highest version.
fn check_version(what: &'static str, version: i16) -> Result<i16, ConsumerProtocolError> {
    if version < 0 {
        return Err(ConsumerProtocolError::UnsupportedVersion { what, version });
    }
    Ok(version.min(HIGHEST_VERSION))
}

fn split_version(what: &'static str, bytes: &Bytes) -> Result<(i16, Bytes), ConsumerProtocolError> {
    if bytes.len() < 2 {
        return Err(ConsumerProtocolError::MissingVersion {
            what,
            len: bytes.len(),
        });
    }
    Ok((i16::from_be_bytes([bytes[0], bytes[1]]), bytes.slice(2..)))
}

/// The version (already checked) then the body.
fn encode_prefixed<M: Encodable>(
    what: &'static str,
    version: i16,
    body: &M,
) -> Result<Bytes, ConsumerProtocolError> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    body.encode(&mut buf, version)
        .map_err(|e| ConsumerProtocolError::Encode {
            what,
            reason: format!("{e:#}"),
        })?;
    Ok(buf.freeze())
}

/// Java's `ConsumerProtocolTest`, plus byte-level checks against the Java layout and garbage.
#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use proptest::prelude::*;

    use super::*;

    fn tp(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_owned(), partition)
    }

    fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
        let mut v = v.to_vec();
        v.sort();
        v
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["foo".into(), "bar".into()],
            user_data: Some(Bytes::from_static(b"hello")),
            owned_partitions: vec![tp("foo", 0), tp("bar", 0)],
            generation_id: Some(1),
            group_instance_id: None,
            rack_id: Some("rack-a".into()),
        }
    }

    #[test]
    fn serialize_deserialize_subscription_all_versions() {
        let s = full_subscription();
        for version in 0..=HIGHEST_VERSION {
            let parsed = Subscription::decode(&s.encode_version(version).unwrap()).unwrap();
            assert_eq!(sorted(&parsed.topics), sorted(&s.topics));
            assert_eq!(parsed.user_data, s.user_data);
            assert_eq!(parsed.group_instance_id, None);
            let owned = if version >= 1 {
                sorted(&s.owned_partitions)
            } else {
                vec![]
            };
            assert_eq!(sorted(&parsed.owned_partitions), owned);
            assert_eq!(parsed.generation_id, Some(1).filter(|_| version >= 2));
            assert_eq!(
                parsed.rack_id.as_deref(),
                Some("rack-a").filter(|_| version >= 3)
            );
        }
    }

    #[test]
    fn serialize_deserialize_metadata_and_null_user_data() {
        let empty = Subscription {
            user_data: Some(Bytes::new()),
            ..Subscription::new(["foo", "bar"])
        };
        let parsed = Subscription::decode(&empty.encode().unwrap()).unwrap();
        assert_eq!(parsed.topics, ["bar", "foo"]);
        assert_eq!(parsed.user_data, Some(Bytes::new()));
        assert_eq!(
            (
                parsed.group_instance_id,
                parsed.generation_id,
                parsed.rack_id
            ),
            (None, None, None)
        );

        let none = Subscription::new(["foo", "bar"]);
        assert_eq!(
            Subscription::decode(&none.encode().unwrap())
                .unwrap()
                .user_data,
            None
        );
    }

    #[test]
    fn serialize_subscription_should_order_topics_and_owned_partitions() {
        let owned = vec![tp("foo", 1), tp("bar", 2)];
        let a = Subscription {
            owned_partitions: owned.clone(),
            ..Subscription::new(["foo", "bar"])
        };
        let b = Subscription {
            owned_partitions: owned.clone(),
            ..Subscription::new(["bar", "foo"])
        };
        assert_eq!(a.encode().unwrap(), b.encode().unwrap());
        let c = Subscription {
            owned_partitions: owned.into_iter().rev().collect(),
            ..a.clone()
        };
        assert_eq!(a.encode().unwrap(), c.encode().unwrap());
    }

    #[test]
    fn deserialize_old_subscription_version() {
        let s = Subscription::new(["foo", "bar"]);
        let parsed = Subscription::decode(&s.encode_version(0).unwrap()).unwrap();
        assert_eq!(sorted(&parsed.topics), ["bar", "foo"]);
        assert_eq!(parsed.user_data, None);
        assert!(parsed.owned_partitions.is_empty());
        assert_eq!((parsed.generation_id, parsed.rack_id), (None, None));
    }

    #[test]
    fn deserialize_new_subscription_with_old_version() {
        for with_generation_and_rack in [true, false] {
            let mut s = Subscription {
                owned_partitions: vec![tp("bar", 2)],
                ..Subscription::new(["foo", "bar"])
            };
            if with_generation_and_rack {
                s.generation_id = Some(1);
                s.rack_id = Some("rack-a".into());
            }
            // An old reader skips the version and reads the body as version 0.
            let body = s.encode().unwrap().slice(2..);
            let parsed = Subscription::decode_body(0, body).unwrap();
            assert_eq!(sorted(&parsed.topics), ["bar", "foo"]);
            assert_eq!(parsed.user_data, None);
            assert!(parsed.owned_partitions.is_empty());
            assert_eq!((parsed.generation_id, parsed.rack_id), (None, None));
        }
    }

    fn put_string(buf: &mut BytesMut, s: &str) {
        buf.put_i16(s.len() as i16);
        buf.put_slice(s.as_bytes());
    }

    #[test]
    fn deserialize_future_subscription_version() {
        // Version 100 appends a string field after the rack.
        let mut buf = BytesMut::new();
        buf.put_i16(100);
        buf.put_i32(1);
        put_string(&mut buf, "topic");
        buf.put_i32(0); // empty user data
        buf.put_i32(1);
        put_string(&mut buf, "bar");
        buf.put_i32(1);
        buf.put_i32(2);
        buf.put_i32(1); // generation
        put_string(&mut buf, "rack-a");
        put_string(&mut buf, "bar");
        let parsed = Subscription::decode(&buf.freeze()).unwrap();
        assert_eq!(parsed.topics, ["topic"]);
        assert_eq!(parsed.owned_partitions, [tp("bar", 2)]);
        assert_eq!(parsed.generation_id, Some(1));
        assert_eq!(parsed.rack_id.as_deref(), Some("rack-a"));
    }

    #[test]
    fn serialize_deserialize_assignment_all_versions() {
        let a = Assignment {
            partitions: vec![tp("foo", 1), tp("bar", 2)],
            user_data: Some(Bytes::from_static(b"hello")),
        };
        for version in 0..=HIGHEST_VERSION {
            assert_eq!(
                Assignment::decode(&a.encode_version(version).unwrap()).unwrap(),
                a
            );
        }
        let empty = Assignment {
            user_data: Some(Bytes::new()),
            ..a.clone()
        };
        assert_eq!(
            Assignment::decode(&empty.encode().unwrap())
                .unwrap()
                .user_data,
            Some(Bytes::new())
        );
        let none = Assignment::new(a.partitions.clone());
        assert_eq!(
            Assignment::decode(&none.encode().unwrap())
                .unwrap()
                .user_data,
            None
        );
    }

    #[test]
    fn deserialize_future_assignment_version() {
        let mut buf = BytesMut::new();
        buf.put_i16(100);
        buf.put_i32(1);
        put_string(&mut buf, "foo");
        buf.put_i32(1);
        buf.put_i32(1);
        buf.put_i32(0);
        put_string(&mut buf, "bar");
        assert_eq!(
            Assignment::decode(&buf.freeze()).unwrap().partitions,
            [tp("foo", 1)]
        );
    }

    #[test]
    fn subscription_bytes_are_javas() {
        let s = Subscription {
            topics: vec!["b".into(), "a".into()],
            user_data: None,
            owned_partitions: vec![tp("a", 1), tp("b", 2), tp("a", 0)],
            generation_id: Some(5),
            group_instance_id: Some("ignored".into()),
            rack_id: Some("r".into()),
        };
        let expected: &[u8] = &[
            0, 3, // version
            0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b', // topics, sorted
            0xff, 0xff, 0xff, 0xff, // null user data
            0, 0, 0, 2, // owned: a [0, 1], b [2]
            0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, //
            0, 1, b'b', 0, 0, 0, 1, 0, 0, 0, 2, //
            0, 0, 0, 5, // generation
            0, 1, b'r', // rack
        ];
        assert_eq!(&s.encode().unwrap()[..], expected);
        // Asking for a version we do not know writes ours, as Java does.
        assert_eq!(&s.encode_version(7).unwrap()[..], expected);
        // Version 0: topics and user data only.
        assert_eq!(
            &s.encode_version(0).unwrap()[..],
            &[&[0, 0][..], &expected[2..16]].concat()[..]
        );
    }

    #[test]
    fn assignment_groups_by_topic_in_order_of_appearance() {
        let a = Assignment::new(vec![tp("t2", 1), tp("t1", 0), tp("t2", 0)]);
        let expected: &[u8] = &[
            0, 3, 0, 0, 0, 2, //
            0, 2, b't', b'2', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, //
            0, 2, b't', b'1', 0, 0, 0, 1, 0, 0, 0, 0, //
            0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(&a.encode().unwrap()[..], expected);
        assert_eq!(
            Assignment::decode(&a.encode().unwrap()).unwrap().partitions,
            [tp("t2", 1), tp("t2", 0), tp("t1", 0)]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let missing = Subscription::decode(&Bytes::from_static(&[0]));
        assert_eq!(
            missing,
            Err(ConsumerProtocolError::MissingVersion {
                what: "subscription",
                len: 1
            })
        );
        let negative = Assignment::decode(&Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0]));
        assert_eq!(
            negative,
            Err(ConsumerProtocolError::UnsupportedVersion {
                what: "assignment",
                version: -1
            })
        );
        assert!(Subscription::new(["t"]).encode_version(-1).is_err());
        let full = full_subscription().encode().unwrap();
        for cut in 2..full.len() {
            let result = Subscription::decode(&full.slice(..cut));
            assert!(
                matches!(result, Err(ConsumerProtocolError::Malformed { .. })),
                "cut at {cut}: {result:?}"
            );
        }
        // Invalid UTF-8 in a topic name.
        let bad = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            Subscription::decode(&bad),
            Err(ConsumerProtocolError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let bytes = Bytes::from(bytes);
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }

        #[test]
        fn subscription_round_trips(
            topics in prop::collection::btree_set("[a-z]{1,5}", 0..4),
            owned in prop::collection::btree_set(("[a-z]{1,5}", 0..50i32), 0..6),
            user_data in prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
            generation_id in prop::option::of(0..1000i32),
            rack_id in prop::option::of("[a-z]{1,3}"),
        ) {
            let s = Subscription {
                topics: topics.into_iter().collect(),
                user_data: user_data.map(Bytes::from),
                owned_partitions: owned.into_iter().collect(),
                generation_id,
                group_instance_id: None,
                rack_id,
            };
            prop_assert_eq!(Subscription::decode(&s.encode().unwrap()).unwrap(), s);
        }
    }
}
