//! Delta tables written by `kingest run`, read back by independent readers: the `deltalake`
//! Python package (delta-rs's kernel, which replays the log and its checkpoints itself) and
//! polars (`pl.read_delta`), in another process and another language. The readers' rows,
//! schema, partition columns, protocol and `txn` versions come back as one JSON document; the
//! exactly-once check keys rows by their `partition` and `offset` columns.
//!
//! `scripts/setup.sh` installs both packages; [`require_delta_readers`] fails a test with
//! that advice when they are missing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

/// A `[sink]` table writing a Delta table at `path`, with `extra` lines (`partition_by = ...`).
pub fn delta_sink(path: &Path, extra: &str) -> String {
    format!(
        r#"
[sink]
type = "delta"
path = "{}"
{extra}
"#,
        path.display()
    )
}

/// Fails unless `python3 -c "import deltalake, polars"` works.
pub fn require_delta_readers() {
    let ok = Command::new("python3")
        .args(["-c", "import deltalake, polars"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python packages deltalake and polars are not installed: run scripts/setup.sh (it \
         installs them from PyPI); these tests never pass without the independent readers"
    );
}

const SCRIPT: &str = r#"
import json, sys, datetime, decimal
from deltalake import DeltaTable
import polars as pl
import pyarrow as pa
path, app_ids, opts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]) or None
dt = DeltaTable(path, storage_options=opts)
t = dt.to_pyarrow_table()
rows = t.to_pylist()
def plain(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v
rows = [{k: plain(v) for k, v in r.items()} for r in rows]
# The same version deltalake read, while a running job may have committed more.
df = pl.read_delta(path, version=dt.version(), storage_options=opts)
prows = [{k: plain(v) for k, v in r.items()} for r in df.to_dicts()]
key = lambda r: json.dumps(r, sort_keys=True)
meta = dt.metadata()
proto = dt.protocol()
adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
print(json.dumps({
    "version": dt.version(),
    "protocol": [proto.min_reader_version, proto.min_writer_version],
    "partition_columns": meta.partition_columns,
    "schema": {f.name: str(f.type) for f in dt.schema().fields},
    "arrow_types": {f.name: str(f.type) for f in t.schema},
    "polars_types": {k: str(v) for k, v in df.schema.items()},
    "rows": rows,
    "polars_same_rows": sorted(map(key, rows)) == sorted(map(key, prows)),
    "txns": {a: dt.transaction_version(a) for a in app_ids},
    "files": len(dt.file_uris()),
    "partition_values": sorted({json.dumps(plain({k: v for k, v in a.items() if k.startswith("partition.")}), sort_keys=True) for a in adds}),
}))
"#;

/// What the readers saw of a table.
#[derive(Debug, Clone)]
pub struct DeltaRead {
    /// The table's version.
    pub version: i64,
    /// `(minReaderVersion, minWriterVersion)`.
    pub protocol: (i64, i64),
    /// `metaData.partitionColumns`.
    pub partition_columns: Vec<String>,
    /// Column name to Delta type, as deltalake prints it (`PrimitiveType("long")`).
    pub schema: BTreeMap<String, String>,
    /// Column name to the Arrow type deltalake reads it as.
    pub arrow_types: BTreeMap<String, String>,
    /// Column name to the polars type.
    pub polars_types: BTreeMap<String, String>,
    /// Every row, deltalake's reading (timestamps and dates as ISO text, decimals as text).
    pub rows: Vec<Map<String, Value>>,
    /// Whether polars read the same rows (as a multiset).
    pub polars_same_rows: bool,
    /// The `txn` version of each app id asked about (`None`: none recorded).
    pub txns: BTreeMap<String, Option<i64>>,
    /// Live data files.
    pub files: usize,
    /// The distinct partition values of the live files, as JSON objects.
    pub partition_values: Vec<String>,
}

/// Reads the table at `table` with deltalake and polars, asking for the `txn` versions of
/// `app_ids`.
pub fn read_delta(table: &Path, app_ids: &[String]) -> DeltaRead {
    read_delta_at(
        table.to_str().expect("a UTF-8 path"),
        &BTreeMap::new(),
        app_ids,
    )
}

/// Reads the table at `uri` (a directory, `s3://...`, `az://...`) with deltalake and polars,
/// reaching an object store with delta-rs's `storage_options` (`aws_endpoint`, ...), asking
/// for the `txn` versions of `app_ids`.
pub fn read_delta_at(
    uri: &str,
    storage_options: &BTreeMap<String, String>,
    app_ids: &[String],
) -> DeltaRead {
    require_delta_readers();
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(uri)
        .arg(serde_json::to_string(app_ids).unwrap())
        .arg(serde_json::to_string(storage_options).unwrap())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "reading {uri} with deltalake/polars failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    let strings = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    DeltaRead {
        version: v["version"].as_i64().unwrap(),
        protocol: (
            v["protocol"][0].as_i64().unwrap(),
            v["protocol"][1].as_i64().unwrap(),
        ),
        partition_columns: v["partition_columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect(),
        schema: strings(&v["schema"]),
        arrow_types: strings(&v["arrow_types"]),
        polars_types: strings(&v["polars_types"]),
        rows: v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect(),
        polars_same_rows: v["polars_same_rows"].as_bool().unwrap(),
        txns: v["txns"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64()))
            .collect(),
        files: v["files"].as_u64().unwrap() as usize,
        partition_values: v["partition_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// The `txn` app id kingest writes for `topic`'s `partition` under `app_id`.
pub fn app_id(app: &str, topic: &str, partition: i32) -> String {
    format!("{app}:{topic}:{partition}")
}

/// Checks that the table holds every offset below `end` of `topic` exactly once (rows keyed
/// by their `partition` and `offset` columns), that polars read the same rows, and that the
/// `txn` of every partition is its end offset; returns the rows by (partition, offset).
pub fn delta_exactly_once(
    read: &DeltaRead,
    app: &str,
    topic: &str,
    end: &BTreeMap<i32, i64>,
) -> BTreeMap<(i32, i64), Map<String, Value>> {
    assert!(
        read.polars_same_rows,
        "polars read other rows than deltalake"
    );
    let mut rows = BTreeMap::new();
    for r in &read.rows {
        let p = r["partition"].as_i64().expect("a partition column") as i32;
        let o = r["offset"].as_i64().expect("an offset column");
        if let Some(previous) = rows.insert((p, o), r.clone()) {
            panic!("partition {p} offset {o} is in the table twice: {previous:?}");
        }
    }
    for (p, next) in end {
        let have: Vec<i64> = rows
            .range((*p, 0)..(*p, *next))
            .map(|((_, o), _)| *o)
            .collect();
        let missing: Vec<i64> = (0..*next)
            .filter(|o| have.binary_search(o).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: offsets missing from the table: {:?}{}",
            &missing[..missing.len().min(20)],
            if missing.len() > 20 { " ..." } else { "" }
        );
        assert_eq!(
            read.txns.get(&app_id(app, topic, *p)).copied().flatten(),
            Some(*next),
            "partition {p}: the table's txn version"
        );
    }
    assert_eq!(rows.len(), read.rows.len());
    assert_eq!(
        rows.len() as i64,
        end.values().sum::<i64>(),
        "rows past the end offsets"
    );
    rows
}
