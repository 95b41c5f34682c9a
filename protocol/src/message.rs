//! Request and response codecs over the `kafka-protocol` crate's generated messages.
//!
//! The generated types know each message's fields per version; this module adds what a client
//! and a broker need around them: the size prefix, the header for the right header version, and
//! errors that name the API and version instead of an opaque `anyhow::Error`. Decoding takes the
//! frame as `Bytes`, so every bytes field of a response (a fetch response's records above all) is
//! a slice of the frame, not a copy.

use std::any::type_name;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::error::ProtocolError;
use crate::frame::{begin_frame, finish_frame};

/// The short name of a message type, e.g. "FetchResponse".
fn short_name<T>() -> &'static str {
    let full = type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

fn decode_err(what: &'static str, api_key: i16, version: i16, e: anyhow::Error) -> ProtocolError {
    ProtocolError::Decode {
        what,
        api_key,
        version,
        reason: format!("{e:#}"),
    }
}

fn encode_err(what: &'static str, api_key: i16, version: i16, e: anyhow::Error) -> ProtocolError {
    ProtocolError::Encode {
        what,
        api_key,
        version,
        reason: format!("{e:#}"),
    }
}

/// Checks that `version` is one this build can encode for `R`.
fn check_version<R: Request>(version: i16) -> Result<(), ProtocolError> {
    let range = R::VERSIONS;
    if version < range.min || version > range.max {
        return Err(ProtocolError::UnsupportedVersion {
            api: short_name::<R>(),
            ours: range.to_string(),
            theirs: version.to_string(),
        });
    }
    Ok(())
}

/// Appends one whole request frame (size prefix, header, body) to `buf`.
///
/// Writing into the caller's buffer lets a connection batch several pipelined requests into one
/// write, and lets a cancelled caller's frame be dropped whole before it reaches the socket.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<(), ProtocolError> {
    check_version::<R>(version)?;
    let what = short_name::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
    let start = buf.len();
    let at = begin_frame(buf);
    let result = header
        .encode(buf, R::header_version(version))
        .and_then(|()| request.encode(buf, version));
    if let Err(e) = result {
        // Leave the buffer as it was: never half a frame.
        buf.truncate(start);
        return Err(encode_err(what, R::KEY, version, e));
    }
    finish_frame(buf, at).map_err(|e| {
        buf.truncate(start);
        ProtocolError::from(e)
    })
}

/// Reads the correlation id at the front of a response frame, before knowing which request it
/// answers (the first four bytes of every response header version).
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, ProtocolError> {
    match frame {
        [a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(ProtocolError::ShortFrame {
            what: "response header",
            len: frame.len(),
        }),
    }
}

/// Decodes a response frame (without its size prefix) to the request `R` was sent as `version`.
///
/// Bytes fields of the response are slices of `frame`. Bytes left after the body are an error:
/// they would mean we decoded with the wrong version.
pub fn decode_response<R: Request>(
    frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), ProtocolError> {
    check_version::<R>(version)?;
    let mut buf = frame;
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut buf, header_version)
        .map_err(|e| decode_err("response header", R::KEY, version, e))?;
    let what = short_name::<R::Response>();
    let body =
        R::Response::decode(&mut buf, version).map_err(|e| decode_err(what, R::KEY, version, e))?;
    if buf.has_remaining() {
        return Err(ProtocolError::TrailingBytes {
            what,
            api_key: R::KEY,
            version,
            extra: buf.remaining(),
        });
    }
    Ok((header, body))
}

/// Decodes a request frame of any API, as a broker does (testkit uses this).
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, RequestKind), ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError::ShortFrame {
            what: "request header",
            len: frame.len(),
        });
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key =
        ApiKey::try_from(api_key_raw).map_err(|_| ProtocolError::UnknownApiKey(api_key_raw))?;
    let range = api_key.valid_versions();
    if version < range.min || version > range.max {
        return Err(ProtocolError::UnsupportedVersion {
            api: api_name(api_key),
            ours: range.to_string(),
            theirs: version.to_string(),
        });
    }
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api_key.request_header_version(version))
        .map_err(|e| decode_err("request header", api_key_raw, version, e))?;
    let body = RequestKind::decode(api_key, &mut buf, version)
        .map_err(|e| decode_err(api_name(api_key), api_key_raw, version, e))?;
    if buf.has_remaining() {
        return Err(ProtocolError::TrailingBytes {
            what: api_name(api_key),
            api_key: api_key_raw,
            version,
            extra: buf.remaining(),
        });
    }
    Ok((header, body))
}

/// Appends one whole response frame for `api_key` at `version` to `buf`, as a broker does.
pub fn encode_response(
    buf: &mut BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Result<(), ProtocolError> {
    let start = buf.len();
    let at = begin_frame(buf);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let result = header
        .encode(buf, api_key.response_header_version(version))
        .and_then(|()| response.encode(buf, version));
    if let Err(e) = result {
        buf.truncate(start);
        return Err(encode_err(api_name(api_key), api_key as i16, version, e));
    }
    finish_frame(buf, at).map_err(|e| {
        buf.truncate(start);
        ProtocolError::from(e)
    })
}

/// The API's name as Kafka's documentation spells it, e.g. "Fetch".
pub fn api_name(api_key: ApiKey) -> &'static str {
    macro_rules! names {
        ($($key:ident),* $(,)?) => {
            match api_key {
                $(ApiKey::$key => stringify!($key),)*
                #[allow(unreachable_patterns)]
                _ => "unnamed API",
            }
        };
    }
    names!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        SaslHandshake,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        OffsetForLeaderEpoch,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        WriteTxnMarkers,
        TxnOffsetCommit,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeConfigs,
        AlterConfigs,
        AlterReplicaLogDirs,
        DescribeLogDirs,
        SaslAuthenticate,
        CreatePartitions,
        CreateDelegationToken,
        RenewDelegationToken,
        ExpireDelegationToken,
        DescribeDelegationToken,
        DeleteGroups,
        ElectLeaders,
        IncrementalAlterConfigs,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        OffsetDelete,
        DescribeClientQuotas,
        AlterClientQuotas,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeCluster,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        GetTelemetrySubscriptions,
        PushTelemetry,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;
    use kafka_protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, FetchRequest, MetadataRequest, TopicName,
    };

    #[test]
    fn request_round_trips_through_broker_side_decoder() {
        for version in [0i16, 4, 9, 12] {
            let mut buf = BytesMut::new();
            let req = MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("events")))),
            ]));
            encode_request(&mut buf, 77, Some("kingest"), version, &req).unwrap();
            let frame = FrameDecoder::default().split(&mut buf).unwrap().unwrap();
            let (header, body) = decode_request(frame.freeze()).unwrap();
            assert_eq!(header.correlation_id, 77);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.client_id.as_deref(), Some("kingest"));
            assert!(matches!(body, RequestKind::Metadata(m) if m == req));
        }
    }

    #[test]
    fn response_round_trip_and_trailing_bytes() {
        let resp = ApiVersionsResponse::default().with_throttle_time_ms(5);
        let mut buf = BytesMut::new();
        encode_response(
            &mut buf,
            9,
            ApiKey::ApiVersions,
            3,
            &ResponseKind::ApiVersions(resp.clone()),
        )
        .unwrap();
        let frame = FrameDecoder::default()
            .split(&mut buf)
            .unwrap()
            .unwrap()
            .freeze();
        assert_eq!(peek_correlation_id(&frame).unwrap(), 9);
        let (h, body) = decode_response::<ApiVersionsRequest>(frame.clone(), 3).unwrap();
        assert_eq!((h.correlation_id, body), (9, resp));

        let mut long = BytesMut::from(&frame[..]);
        long.extend_from_slice(b"zz");
        let err = decode_response::<ApiVersionsRequest>(long.freeze(), 3).unwrap_err();
        assert!(
            matches!(err, ProtocolError::TrailingBytes { extra: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn unsupported_version_is_refused_before_encoding() {
        let mut buf = BytesMut::new();
        let err = encode_request(&mut buf, 1, None, 999, &FetchRequest::default()).unwrap_err();
        assert!(err.to_string().contains("FetchRequest"), "{err}");
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_requests_are_errors() {
        for frame in [
            &b""[..],
            b"\x00",
            b"\x7f\x7f\x00\x00",
            b"\x00\x03\x00\x01\x00",
            b"\x00\x12\x00\x03\xff\xff\xff\xff",
        ] {
            assert!(decode_request(Bytes::copy_from_slice(frame)).is_err());
        }
        // A Metadata v0 request announcing 54 million topics in a few bytes: an error, not an abort.
        let hostile =
            Bytes::from_static(&[0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0x03, 0x3c, 0x0c, 0x00, 0xb6]);
        assert!(decode_request(hostile).is_err());
        let _ = TopicName::default();
    }
}
