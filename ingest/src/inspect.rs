//! Printing what kingest reads and writes: the records of a raw record set (captured fetch
//! data), and in [`parquet`] a Parquet file or dataset with the Kafka offsets its footers hold.

pub mod parquet;

use std::fmt::Write as _;

use bytes::Bytes;
use kingest_protocol::record::{DecodeOptions, RecordError, RecordSet};

/// Renders every batch and record of `data` as text: one line per batch header, one per record
/// (offset, timestamp, key, value and headers, bytes escaped), and the cut-off tail if any.
pub fn render(data: Bytes) -> Result<String, RecordError> {
    let opts = DecodeOptions::default();
    let mut out = String::new();
    let mut set = RecordSet::new(data);
    for raw in set.by_ref() {
        let raw = raw?;
        let h = raw.header();
        let codec = h
            .compression()
            .map_or_else(|id| format!("codec#{id}"), |c| c.to_string());
        let _ = writeln!(
            out,
            "batch offset={} last={} magic={} codec={} records={} producer={}/{} seq={} txn={} control={}",
            h.base_offset, h.last_offset(), h.magic, codec, h.record_count, h.producer_id,
            h.producer_epoch, h.base_sequence, h.is_transactional(), h.is_control()
        );
        let batch = raw.decode(&opts)?;
        if let Some(marker) = batch.control_record()? {
            let _ = writeln!(
                out,
                "  control {:?} coordinator_epoch={:?}",
                marker.kind, marker.coordinator_epoch
            );
            continue;
        }
        for record in batch.records() {
            let r = record?;
            let _ = write!(
                out,
                "  {} ts={} key={} value={}",
                r.offset,
                r.timestamp,
                show(r.key),
                show(r.value)
            );
            for h in r.headers {
                let _ = write!(out, " {}={}", String::from_utf8_lossy(h.key), show(h.value));
            }
            out.push('\n');
        }
    }
    if let Some(cut) = set.incomplete() {
        let _ = writeln!(
            out,
            "incomplete batch at byte {}: {} of {:?} bytes",
            cut.at, cut.available, cut.needed
        );
    }
    Ok(out)
}

fn show(b: Option<&[u8]>) -> String {
    match b {
        None => "null".to_owned(),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kingest_protocol::record::{BatchBuilder, BatchOptions, Header};

    #[test]
    fn renders_records_and_headers() {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: 5,
            ..Default::default()
        });
        b.push(
            10,
            Some(b"k"),
            None,
            &[Header {
                key: b"h",
                value: Some(b"v"),
            }],
        );
        let text = render(b.finish().unwrap()).unwrap();
        assert!(
            text.contains("batch offset=5 last=5 magic=2 codec=none records=1"),
            "{text}"
        );
        assert!(
            text.contains("  5 ts=10 key=\"k\" value=null h=\"v\""),
            "{text}"
        );
    }
}
