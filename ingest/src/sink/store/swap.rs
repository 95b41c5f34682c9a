//! Replacing several files of a local directory in one atomic step, for compaction: the
//! directory's new contents are built beside it and the two directories are exchanged with
//! one `renameat2(RENAME_EXCHANGE)`; and the directory locks that keep the sink's writers out
//! of the moment the new contents are taken.
//!
//! # Why a directory exchange
//!
//! A reader of a plain directory (pyarrow, Spark, DuckDB) lists it and opens what it listed;
//! nothing tells it which files belong together. Merging files `A`, `B`, `C` into `M` changes
//! four directory entries, and a rename, a link or a delete changes one: whatever the order,
//! some listing sees `M` beside one of `A`, `B`, `C` (every row of it twice) or none of them
//! (its rows missing), and a crash between two steps leaves that state for every later reader.
//! A listing is also not a snapshot: `readdir` may or may not return an entry added or removed
//! while it runs. So no order of file operations makes a multi-file rewrite invisible; one
//! directory entry that switches every file at once does. `RENAME_EXCHANGE` swaps two
//! directory entries atomically (Linux 3.15+, on ext4, XFS, btrfs, tmpfs and others):
//!
//! 1. the merged files are written into a hidden sibling `.{name}.kingest-compact-{id}` and
//!    fsynced;
//! 2. under an exclusive lock of the directory (see below), every entry of the directory but
//!    the merged inputs is hard-linked into the sibling (the same inodes, so a writer's open
//!    file stays the same file), and the sibling is fsynced;
//! 3. the two are exchanged and the parent fsynced: the directory's name now holds the new
//!    contents, the sibling's name the old ones;
//! 4. the lock is released and the old contents removed.
//!
//! A reader listing the directory opens one inode for it and lists either the old contents or
//! the new, never a mix; a reader that listed the old contents and opens a merged input after
//! the exchange gets "file not found" (an error it can retry), never a wrong answer. A `kill
//! -9` before step 3 leaves the directory as it was and a hidden sibling; after it, the new
//! contents and a hidden sibling. Either way readers see each row once, and
//! [`remove_stale`] deletes the sibling later.
//!
//! # The writers' side
//!
//! The sink's writers (a running `kingest run`) create `.tmp` files in the directory and rename
//! them into place by path. A file created, or renamed into place, in the old directory after
//! step 2 took its entries would be left behind in the sibling. So every writer operation on
//! a directory's entries (create a `.tmp`, rename it, remove a superseded marker, recovery's
//! rolls and removals) holds a shared `flock` of the directory ([`DirLock`]), and step 2 holds
//! an exclusive one, for a few milliseconds. A lock is taken on the directory found at the path
//! when the lock is granted: a writer that waited while the directory was exchanged checks the
//! inode again and locks the new one.

use std::io;
use std::path::{Path, PathBuf};

use crate::sink::{Result, SinkError};

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// A `flock` held on a directory until dropped.
pub(crate) struct DirLock {
    _dir: std::fs::File,
}

/// Shared (writers) or exclusive (the exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

/// Locks the directory at `dir` (blocking), making sure the locked inode is still the one at
/// `dir` once the lock is granted.
#[cfg(unix)]
pub(crate) fn lock_dir(dir: &Path, mode: LockMode) -> Result<DirLock> {
    use std::os::unix::fs::MetadataExt;

    use rustix::fs::{flock, FlockOperation};
    let op = match mode {
        LockMode::Shared => FlockOperation::LockShared,
        LockMode::Exclusive => FlockOperation::LockExclusive,
    };
    loop {
        let file = std::fs::File::open(dir).map_err(io_err("open directory", dir))?;
        flock(&file, op).map_err(|e| io_err("lock directory", dir)(e.into()))?;
        let held = file.metadata().map_err(io_err("stat", dir))?;
        let now = std::fs::metadata(dir).map_err(io_err("stat", dir))?;
        if held.dev() == now.dev() && held.ino() == now.ino() {
            return Ok(DirLock { _dir: file });
        }
        // Exchanged while we waited: lock the directory that is there now.
    }
}

#[cfg(not(unix))]
pub(crate) fn lock_dir(dir: &Path, _mode: LockMode) -> Result<DirLock> {
    let file = std::fs::File::open(dir).map_err(io_err("open directory", dir))?;
    Ok(DirLock { _dir: file })
}

/// The marker in the names of compaction's hidden siblings.
const SIBLING_TAG: &str = ".kingest-compact-";

/// The hidden sibling directory of `dir` for compaction `id`.
pub(crate) fn sibling(dir: &Path, id: &str) -> Result<PathBuf> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(SinkError::Location {
            location: dir.display().to_string(),
            reason: "compaction needs the directory to have a parent (it swaps the directory with a sibling)".into(),
        });
    };
    Ok(parent.join(format!(".{}{SIBLING_TAG}{id}", name.to_string_lossy())))
}

/// A compaction's sibling directory, created and locked (exclusive) for as long as it lives,
/// so that [`remove_stale`] in another process never removes it.
pub(crate) struct Sibling {
    pub path: PathBuf,
    lock: Option<DirLock>,
}

impl Sibling {
    pub(crate) fn create(path: PathBuf) -> Result<Self> {
        std::fs::create_dir(&path).map_err(io_err("create directory", &path))?;
        let lock = lock_dir(&path, LockMode::Exclusive)?;
        Ok(Self {
            path,
            lock: Some(lock),
        })
    }

    /// Lets go of the lock: called right after the exchange, when the locked inode has
    /// become the live directory that writers lock.
    pub(crate) fn release(&mut self) {
        self.lock = None;
    }
}

/// Removes the compaction siblings of `dir` that no live compaction holds (left by a killed
/// one). Returns the removed paths.
pub(crate) fn remove_stale(dir: &Path) -> Result<Vec<String>> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!(".{}{SIBLING_TAG}", name.to_string_lossy());
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(io_err("list", parent)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", parent))?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        if try_lock_exclusive(&path)? {
            // Hidden subdirectories of a directory whose exchange happened belong to it.
            let subdirs: Vec<std::ffi::OsString> = std::fs::read_dir(&path)
                .map_err(io_err("list", &path))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|k| k.is_dir()))
                .map(|e| e.file_name())
                .collect();
            move_subdirs(&path, dir, &subdirs)?;
            remove_tree(&path)?;
            removed.push(path.display().to_string());
        }
    }
    Ok(removed)
}

#[cfg(unix)]
fn try_lock_exclusive(dir: &Path) -> Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    let file = match std::fs::File::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("open directory", dir)(e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(io_err("lock directory", dir)(e.into())),
    }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_dir: &Path) -> Result<bool> {
    Ok(true)
}

/// Removes a directory tree; what is gone already is no error.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove directory", path)(e)),
    }
}

/// Fills `to` with hard links to every file of `from` except `skip` (names), the caller
/// holding `from`'s exclusive lock, and returns the hidden subdirectories (`.x`, `_x`: other
/// tools' metadata, `kingest reset-offsets` set-asides), which cannot be linked: the caller
/// moves them into the new contents after the exchange ([`move_subdirs`]). A visible
/// subdirectory means `from` is not a directory of files (a Hive layout one level up), which
/// is refused.
pub(crate) fn link_all_but(
    from: &Path,
    to: &Path,
    skip: &std::collections::HashSet<String>,
) -> Result<Vec<std::ffi::OsString>> {
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(from).map_err(io_err("list", from))? {
        let entry = entry.map_err(io_err("list", from))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if skip.contains(text.as_ref()) || text.contains(SIBLING_TAG) {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let kind = entry.file_type().map_err(io_err("stat", &src))?;
        if kind.is_dir() {
            if !(text.starts_with('.') || text.starts_with('_')) {
                return Err(SinkError::Location {
                    location: from.display().to_string(),
                    reason: format!(
                        "holds the directory {text:?} beside files: compaction rewrites directories of files only"
                    ),
                });
            }
            subdirs.push(name);
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_err("read link", &src))?;
            symlink(&target, &dst).map_err(io_err("symlink", &dst))?;
        } else {
            match std::fs::hard_link(&src, &dst) {
                Ok(()) => {}
                // Removed since it was listed (a recovery removing a dead writer's file).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("link", &src)(e)),
            }
        }
    }
    Ok(subdirs)
}

/// Moves the subdirectories `names` of `from` into `to` where `to` has none of that name:
/// hidden subdirectories follow the directory's new contents after an exchange (and are
/// rescued from a killed compaction's leftovers by [`remove_stale`]).
pub(crate) fn move_subdirs(from: &Path, to: &Path, names: &[std::ffi::OsString]) -> Result<()> {
    for name in names {
        let (src, dst) = (from.join(name), to.join(name));
        if src.is_dir() && !dst.exists() {
            std::fs::rename(&src, &dst).map_err(io_err("rename", &src))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links in a compacted directory",
    ))
}

/// Exchanges the directories `a` and `b` (siblings) atomically, then fsyncs their parent.
#[cfg(target_os = "linux")]
pub(crate) fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| SinkError::Io {
        op: "exchange (renameat2 RENAME_EXCHANGE)",
        path: format!("{} <-> {}", a.display(), b.display()),
        source: e.into(),
    })?;
    if let Some(parent) = a.parent() {
        super::local::fsync_dir_blocking(parent)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn exchange(a: &Path, _b: &Path) -> Result<()> {
    Err(SinkError::Location {
        location: a.display().to_string(),
        reason:
            "compaction swaps directories with renameat2(RENAME_EXCHANGE), which only Linux has"
                .into(),
    })
}
