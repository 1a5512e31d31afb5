//! `tributary bench ...`: measurements of the real code paths, each printed beside
//! the machine's own limit measured in the same run.

pub mod disk;
mod latency;
pub mod log;
pub mod pipeline;
pub mod plugin;
pub mod produce;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// `3.21 M`, `812 k`, `950`.
pub(crate) fn count(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Progress lines, silenced by `--json` so stdout stays one JSON document.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) quiet: bool,
}

impl Out {
    pub(crate) fn line(&self, args: std::fmt::Arguments<'_>) {
        if !self.quiet {
            println!("{args}");
        }
    }
}

/// A uniquely named directory, removed with everything in it when dropped (also when
/// the bench fails half way).
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub(crate) fn create(parent: &Path, what: &str) -> anyhow::Result<ScratchDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{what}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
