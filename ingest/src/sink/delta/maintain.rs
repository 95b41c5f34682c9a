//! `kingest compact` for a Delta table: [`DeltaMaintenance`] plans and executes an `OPTIMIZE`
//! (`optimize.rs`) and, with a retention, a `VACUUM` and a log cleanup (`vacuum.rs`), in the
//! terms every file sink shares ([`crate::sink::maintenance`]).
//!
//! Needs no broker and not the job's columns: the table's log says which files there are and
//! their offsets, and the data files carry their own schema.

use std::time::Duration;

use parquet::file::properties::WriterProperties;

use super::error::DeltaError;
use super::logstore::LogStore;
use super::schema::check_protocol;
use super::table;
use super::{locate, DeltaSinkConfig};
use crate::sink::maintenance::{Maintain, MaintenanceDone, MaintenancePlan};
use crate::sink::parquet::compact::CompactionSettings;
use crate::sink::store::Backend;
use crate::sink::{Result, SinkError};

/// A Delta table opened for compaction and retention: see the [module docs](self).
pub struct DeltaMaintenance {
    pub(super) log: LogStore,
    /// Writes the merged files (locked: `Backend::create` takes `&mut`).
    pub(super) backend: tokio::sync::Mutex<Backend>,
    pub(super) app_id: String,
    pub(super) props: WriterProperties,
    pub(super) settings: CompactionSettings,
    pub(super) retention: Option<Duration>,
    pub(super) checkpoint_interval: u64,
    pub(super) max_commit_attempts: u32,
}

impl DeltaMaintenance {
    /// Opens the table at `config.location` (which must exist) for maintenance.
    pub async fn open(
        config: &DeltaSinkConfig,
        settings: CompactionSettings,
        retention: Option<Duration>,
    ) -> Result<Self> {
        let (local, log, store, prefix) = locate(config)?;
        let backend = match (local, store) {
            (Some(root), _) => Backend::local(root).await?,
            (None, Some(store)) => Backend::store(
                store,
                &prefix,
                config.location.trim_end_matches('/').to_owned(),
                false,
                config.upload_part_bytes,
            )?,
            (None, None) => {
                return Err(SinkError::Location {
                    location: config.location.clone(),
                    reason: "neither a directory nor an object store".into(),
                })
            }
        };
        let props = WriterProperties::builder()
            .set_compression(config.compression.to_parquet())
            .set_max_row_group_bytes(Some(config.row_group_bytes))
            .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            log,
            backend: tokio::sync::Mutex::new(backend),
            app_id: config.app_id().to_owned(),
            props,
            settings,
            retention,
            checkpoint_interval: config.checkpoint_interval,
            max_commit_attempts: config.max_commit_attempts,
        })
    }

    fn delta_err(&self, e: DeltaError) -> SinkError {
        SinkError::Delta {
            table: self.log.display(""),
            source: Box::new(e),
        }
    }

    fn settings_text(&self) -> String {
        let mb = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
        let mut s = format!(
            "OPTIMIZE to {} files, from files under {}, at least {} per merge",
            mb(self.settings.target_bytes),
            mb(self.settings.small_below),
            self.settings.min_input_files
        );
        match self.retention {
            Some(r) => s.push_str(&format!(
                "; VACUUM and log cleanup past {}s",
                r.as_secs_f64()
            )),
            None => s.push_str("; no retention (no VACUUM)"),
        }
        s
    }
}

impl Maintain for DeltaMaintenance {
    async fn plan(&self) -> Result<MaintenancePlan> {
        // Listed before the log is read: a file committed in between is then among the live
        // files, never taken for an unreferenced one.
        let listed = match self.retention {
            Some(_) => Some(self.log.list_all().await?),
            None => None,
        };
        let state = table::load(&self.log, true, None).await?;
        if state.version < 0 {
            return Err(SinkError::Location {
                location: self.log.display(""),
                reason: "no Delta table here (no _delta_log/ commits): run the job first".into(),
            });
        }
        if let Some(p) = &state.protocol {
            check_protocol(p).map_err(|e| self.delta_err(e))?;
        }
        let mut plan = MaintenancePlan {
            sink: format!("delta {} (version {})", self.log.display(""), state.version),
            settings: self.settings_text(),
            ..MaintenancePlan::default()
        };
        self.plan_optimize(&state, &mut plan);
        if let (Some(retention), Some(listed)) = (self.retention, listed) {
            let hint = table::last_checkpoint_hint(&self.log).await?;
            self.plan_vacuum(&state, listed, hint, retention, &mut plan);
        }
        Ok(plan)
    }

    async fn execute(&self, plan: &MaintenancePlan) -> Result<MaintenanceDone> {
        let mut done = MaintenanceDone::default();
        // Temporary files of killed processes (no live writer holds them).
        let grace = self.retention.unwrap_or(Duration::from_secs(3600));
        let recovery = self.backend.lock().await.recover(grace).await?;
        done.cleaned = recovery.removed;
        self.execute_optimize(plan, &mut done).await?;
        self.execute_vacuum(plan, &mut done).await?;
        Ok(done)
    }
}
