//! Wake-ups for live updates: `notify` watches the database's *folder* (SQLite in WAL mode
//! commits into the `-wal` file and checkpoints replace files), ignores `-shm` events, and
//! only wakes the app; the truth is `PRAGMA data_version` (see [`super::snapshot`]). A poll
//! every [`POLL`] covers file systems where notify sees nothing.

use notify::{RecursiveMode, Watcher};
use std::path::Path;

use crate::store::Locator;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Fallback poll interval.
pub const POLL: Duration = Duration::from_millis(1000);
/// Events closer together than this are one wake-up.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

pub struct Live {
    _watcher: Option<notify::RecommendedWatcher>,
    events: Option<Receiver<()>>,
    pending: Option<Instant>,
    last_refresh: Instant,
}

impl Live {
    /// Watches the folder of a SQLite `db` (no watcher, only the poll, when that fails or
    /// the store is on a server: there the poll asks its change counter every second).
    pub fn watch(db: &Locator) -> Live {
        let (tx, rx) = channel();
        let Some(db) = db.sqlite_path() else {
            return Live {
                _watcher: None,
                events: None,
                pending: None,
                last_refresh: Instant::now(),
            };
        };
        let name = db
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let ours = ev.paths.iter().any(|p| {
                    let f = p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    f.starts_with(&name) && !f.ends_with("-shm")
                });
                if ours {
                    let _ = tx.send(());
                }
            }
        })
        .ok()
        .and_then(|mut w| {
            let dir = db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            w.watch(dir, RecursiveMode::NonRecursive).ok().map(|_| w)
        });
        Live {
            events: watcher.as_ref().map(|_| rx),
            _watcher: watcher,
            pending: None,
            last_refresh: Instant::now(),
        }
    }

    pub fn watching(&self) -> bool {
        self._watcher.is_some()
    }

    /// Is it time to look at the store: a debounced file event, or the poll interval passed.
    pub fn due(&mut self) -> bool {
        if let Some(rx) = &self.events {
            while rx.try_recv().is_ok() {
                self.pending.get_or_insert_with(Instant::now);
            }
        }
        let event = self.pending.is_some_and(|t| t.elapsed() >= DEBOUNCE);
        let poll = self.last_refresh.elapsed() >= POLL;
        if event || poll {
            self.pending = None;
            self.last_refresh = Instant::now();
            true
        } else {
            false
        }
    }
}
