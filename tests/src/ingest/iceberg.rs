//! What the Iceberg sink's end-to-end tests share: the `[sink]` table of a job writing an
//! Iceberg table through a SQL catalog, and the table read back by pyiceberg (an independent
//! reader, in Python) through that same catalog: its rows, schema, partition spec and the
//! snapshots' summaries and operations, and the current snapshot's data files.
//!
//! Reading fails with a message when pyiceberg is missing (`scripts/setup.sh` installs it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A `[sink]` table writing `table` through the SQL catalog `uri` into `warehouse`.
pub fn iceberg_sink(uri: &str, warehouse: &Path, table: &str, partition_by: &str) -> String {
    format!(
        r#"
[sink]
type = "iceberg"
catalog = {{ type = "sql", uri = "{uri}" }}
table = "{table}"
warehouse = "{}"
partition_by = {partition_by}
"#,
        warehouse.display()
    )
}

/// The SQLite catalog URI of a file (SQLAlchemy's form: `sqlite:////absolute/path`).
pub fn sqlite_uri(file: &Path) -> String {
    format!("sqlite:///{}", file.display())
}

/// A table as pyiceberg reads it.
#[derive(Debug)]
pub struct IcebergTable {
    /// Every row, as JSON objects (values as pyiceberg's Python values, printed with `str`).
    pub rows: Vec<BTreeMap<String, Value>>,
    /// The schema: field name to Iceberg type.
    pub schema: BTreeMap<String, String>,
    /// The partition spec: `(name, transform, source column)`.
    pub spec: Vec<(String, String, String)>,
    /// Every snapshot's summary, oldest first.
    pub summaries: Vec<BTreeMap<String, String>>,
    /// The data files of the current snapshot.
    pub files: usize,
    /// Every snapshot's operation (`append`, `replace`, ...), oldest first.
    pub operations: Vec<String>,
    /// The locations of the current snapshot's data files.
    pub file_paths: Vec<String>,
}

impl IcebergTable {
    /// The group's offsets in the newest snapshot that carries them.
    pub fn offsets(&self, group: &str) -> BTreeMap<(String, i32), i64> {
        let key = format!("kingest.offsets.{group}");
        let Some(text) = self.summaries.iter().rev().find_map(|s| s.get(&key)) else {
            return BTreeMap::new();
        };
        let v: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(text).unwrap();
        v.into_iter()
            .flat_map(|(t, ps)| {
                ps.into_iter()
                    .map(move |(p, o)| ((t.clone(), p.parse().unwrap()), o))
            })
            .collect()
    }
}

const READ: &str = r#"
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import PyArrowFileIO

class AzureArrowIO(PyArrowFileIO):
    # pyiceberg's pyarrow FileIO, with the AzureFileSystem it makes from the adls.* properties
    # built here: pyiceberg 0.12 first imports `packaging` for a pyarrow version check, which
    # pyiceberg[pyarrow] does not install. Selected with py-io-impl = "__main__.AzureArrowIO".
    def _initialize_azure_fs(self):
        from pyarrow.fs import AzureFileSystem
        p = self.properties
        return AzureFileSystem(
            account_name=p["adls.account-name"], account_key=p["adls.account-key"],
            blob_storage_authority=p["adls.blob-storage-authority"],
            blob_storage_scheme=p["adls.blob-storage-scheme"],
            dfs_storage_authority=p["adls.dfs-storage-authority"],
            dfs_storage_scheme=p["adls.dfs-storage-scheme"])

uri, table, props = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cat = SqlCatalog("default", uri=uri, **props)
t = cat.load_table(table)
rows = t.scan().to_arrow().to_pylist()
schema = t.schema()
def show(v):
    if v is None or isinstance(v, (int, str, bool, float)):
        return v
    return str(v)
print(json.dumps({
    "rows": [{k: show(v) for k, v in r.items()} for r in rows],
    "schema": {f.name: str(f.field_type) for f in schema.fields},
    "spec": [(f.name, str(f.transform), schema.find_field(f.source_id).name)
             for f in t.spec().fields],
    "summaries": [{k: str(v) for k, v in s.summary.additional_properties.items()}
                  for s in t.snapshots()],
    "files": len(list(t.scan().plan_files())),
    "operations": [s.summary.operation.value for s in t.snapshots()],
    "file_paths": [f.file.file_path for f in t.scan().plan_files()],
}))
"#;

const REFERENCED: &str = r#"
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
uri, table, props = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t = SqlCatalog("default", uri=uri, **props).load_table(table)
m = t.metadata
out = {t.metadata_location}
out.update(e.metadata_file for e in m.metadata_log)
out.update(s.statistics_path for s in m.statistics)
for s in m.snapshots:
    out.add(s.manifest_list)
    for mf in s.manifests(t.io):
        out.add(mf.manifest_path)
        out.update(e.data_file.file_path for e in mf.fetch_manifest_entry(t.io, discard_deleted=True))
print(json.dumps(sorted(out)))
"#;

/// Every file the table's current metadata references, as pyiceberg finds them: the
/// metadata file, the ones in `metadata-log`, statistics files, and of every snapshot its
/// manifest list, manifests and the files their live entries name (what reading any snapshot
/// reads). What retention must keep. `properties` as for [`read_table_with`].
pub fn referenced_files(
    uri: &str,
    table: &str,
    properties: &BTreeMap<String, String>,
) -> Vec<String> {
    let out = Command::new("python3")
        .args(["-c", REFERENCED, uri, table])
        .arg(serde_json::to_string(properties).unwrap())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pyiceberg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pyiceberg's JSON")
}

/// Reads `table` through the SQL catalog `uri` (SQLAlchemy's URI: `sqlite:///...`,
/// `postgresql+psycopg2://...`) with pyiceberg.
pub fn read_table(uri: &str, table: &str) -> IcebergTable {
    read_table_with(uri, table, &BTreeMap::new())
}

/// [`read_table`] with catalog properties (pyiceberg's FileIO settings: `s3.endpoint`,
/// `adls.account-name`, `py-io-impl`, ...). `py-io-impl = "__main__.AzureArrowIO"` selects
/// pyiceberg's pyarrow FileIO with an Azure file system made by the script (see there).
pub fn read_table_with(
    uri: &str,
    table: &str,
    properties: &BTreeMap<String, String>,
) -> IcebergTable {
    if !Command::new("python3")
        .args(["-c", "import pyiceberg.catalog.sql"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!(
            "pyiceberg is not installed: run scripts/setup.sh (it installs \
             pyiceberg[sql-sqlite,sql-postgres,pyarrow] from PyPI)"
        );
    }
    let out = Command::new("python3")
        .args(["-c", READ, uri, table])
        .arg(serde_json::to_string(properties).unwrap())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pyiceberg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("pyiceberg's JSON");
    IcebergTable {
        rows: serde_json::from_value(v["rows"].clone()).unwrap(),
        schema: serde_json::from_value(v["schema"].clone()).unwrap(),
        spec: serde_json::from_value(v["spec"].clone()).unwrap(),
        summaries: serde_json::from_value(v["summaries"].clone()).unwrap(),
        files: v["files"].as_u64().unwrap() as usize,
        operations: serde_json::from_value(v["operations"].clone()).unwrap(),
        file_paths: serde_json::from_value(v["file_paths"].clone()).unwrap(),
    }
}

/// The rows keyed by their `partition` and `offset` columns, failing on a repeated key.
pub fn rows_by_partition_offset(
    table: &IcebergTable,
) -> BTreeMap<(i32, i64), BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for r in &table.rows {
        let p = r["partition"].as_i64().expect("a partition column") as i32;
        let o = r["offset"].as_i64().expect("an offset column");
        if let Some(prev) = out.insert((p, o), r.clone()) {
            panic!("partition {p} offset {o} is in the table twice: {prev:?}");
        }
    }
    out
}
