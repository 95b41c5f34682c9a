//! ApiVersions negotiation.
//!
//! On connect a client asks the broker which versions of each API it speaks, then uses, per API,
//! the highest version both sides support. Flexible versions (compact strings and arrays, tagged
//! fields: KIP-482) need no special handling here: `kafka-protocol` encodes each version in its
//! own layout, so picking the version picks the encoding.

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, VersionRange};

use crate::error::ProtocolError;
use crate::message::api_name;

/// The versions a broker offers, by API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    // Indexed by API key; API keys are small and dense (0..=80 today), so a vector beats a map.
    ranges: Vec<Option<(i16, i16)>>,
}

impl ApiVersionTable {
    /// The table of an ApiVersions response.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let mut table = Self::default();
        for api in &response.api_keys {
            table.insert(api.api_key, api.min_version, api.max_version);
        }
        table
    }

    /// Records that the broker offers `api_key` in `min..=max` (ignores nonsense keys).
    pub fn insert(&mut self, api_key: i16, min: i16, max: i16) {
        let Ok(index) = usize::try_from(api_key) else {
            return;
        };
        if index > 4096 || min > max {
            return;
        }
        if self.ranges.len() <= index {
            self.ranges.resize(index + 1, None);
        }
        self.ranges[index] = Some((min, max));
    }

    /// The range the broker offers for `api_key`, if any.
    pub fn broker_range(&self, api_key: i16) -> Option<VersionRange> {
        let (min, max) = (*self.ranges.get(usize::try_from(api_key).ok()?)?)?;
        Some(VersionRange { min, max })
    }

    /// The highest version of `api_key` in both `ours` and the broker's range.
    pub fn negotiate_key(&self, api_key: ApiKey, ours: VersionRange) -> Result<i16, ProtocolError> {
        let theirs = self.broker_range(api_key as i16);
        match theirs.map(|t| t.intersect(&ours)) {
            Some(common) if !common.is_empty() => Ok(common.max),
            _ => Err(ProtocolError::UnsupportedVersion {
                api: api_name(api_key),
                ours: ours.to_string(),
                theirs: theirs.map_or_else(|| "none".to_owned(), |t| t.to_string()),
            }),
        }
    }

    /// The highest version of request type `R` both this build and the broker speak.
    pub fn negotiate<R: Request>(&self) -> Result<i16, ProtocolError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| ProtocolError::UnknownApiKey(R::KEY))?;
        self.negotiate_key(key, R::VERSIONS)
    }

    /// Like [`Self::negotiate`], but never above `cap` (for APIs whose newest versions we do not
    /// use yet, such as Fetch versions that address topics by id only).
    pub fn negotiate_capped<R: Request>(&self, cap: i16) -> Result<i16, ProtocolError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| ProtocolError::UnknownApiKey(R::KEY))?;
        let ours = VersionRange {
            min: R::VERSIONS.min,
            max: R::VERSIONS.max.min(cap),
        };
        self.negotiate_key(key, ours)
    }
}

/// Whether `version` of `api_key` uses the flexible encoding (header v2 for requests).
pub fn is_flexible(api_key: ApiKey, version: i16) -> bool {
    api_key.request_header_version(version) >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
    use kafka_protocol::protocol::Message;

    fn table(entries: &[(i16, i16, i16)]) -> ApiVersionTable {
        let resp = ApiVersionsResponse::default().with_api_keys(
            entries
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        );
        ApiVersionTable::from_response(&resp)
    }

    #[test]
    fn picks_highest_common_version() {
        let t = table(&[(1, 4, 11), (3, 0, 99)]);
        assert_eq!(t.negotiate::<FetchRequest>().unwrap(), 11);
        assert_eq!(
            t.negotiate::<MetadataRequest>().unwrap(),
            MetadataRequest::VERSIONS.max
        );
        assert_eq!(t.negotiate_capped::<MetadataRequest>(9).unwrap(), 9);
        let err = t.negotiate::<ProduceRequest>().unwrap_err();
        assert!(
            err.to_string().contains("Produce is not supported"),
            "{err}"
        );
    }

    #[test]
    fn disjoint_ranges_fail() {
        let t = table(&[(1, 100, 200)]);
        assert!(t.negotiate::<FetchRequest>().is_err());
    }

    #[test]
    fn flexible_versions() {
        assert!(!is_flexible(ApiKey::Fetch, 11));
        assert!(is_flexible(ApiKey::Fetch, 12));
        assert!(is_flexible(ApiKey::ApiVersions, 3));
        assert!(!is_flexible(ApiKey::Metadata, 8));
        assert!(is_flexible(ApiKey::Metadata, 9));
    }
}
