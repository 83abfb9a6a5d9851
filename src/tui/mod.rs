//! `workbench tui`: watch, compare and launch sweeps live (ratatui + crossterm + notify).
//!
//! The TUI reads only the store, through its read API ([`snapshot`]); training never talks to
//! it. It notices new rows through the database ([`live`]). Its only writes are the control
//! requests a user makes (stop, requeue), which go through the store's write API, and the
//! empty store it creates when started where none exists yet ([`open`]), so the first sweep
//! can be launched from it.

pub mod app;
pub mod keys;
pub mod launch;
pub mod live;
pub mod snapshot;
pub mod view;

use anyhow::{Context, Result};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::Terminal;
use std::path::PathBuf;
use std::time::Duration;

use app::{Action, App, Mode, Tab};
use snapshot::{SeriesKey, Snapshot};

use crate::store::{Locator, Store};

/// The series the current tab draws (with the reference runs' series of the same keys when
/// references are shown, `R`).
pub fn wanted(app: &App, snap: &Snapshot) -> Vec<SeriesKey> {
    let mut keys = match app.tab {
        Tab::Run => app
            .selected(snap)
            .map(|id| view::run_wanted(&id))
            .unwrap_or_default(),
        Tab::Compare => view::compare_wanted(app),
        _ => Vec::new(),
    };
    if app.references {
        let metrics: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
        for r in &snap.references {
            for m in &metrics {
                let key = (r.clone(), m.clone());
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    keys
}

/// The run whose spectra the current tab needs.
pub fn spectrum_run(app: &App, snap: &Snapshot) -> Option<String> {
    (app.tab == Tab::Spectrum)
        .then(|| app.selected(snap))
        .flatten()
}

/// The runs whose reconstruction pictures the current tab shows: the selected run on the
/// Pictures tab, the marked runs on the Compare tab.
pub fn picture_runs(app: &App, snap: &Snapshot) -> Vec<String> {
    match app.tab {
        Tab::Pictures => app.selected(snap).into_iter().collect(),
        Tab::Compare => app.compared(),
        _ => Vec::new(),
    }
}

/// Brings `snap` up to what `app` shows (twice when the first read changed what is shown,
/// e.g. the first run list decides which run's series are wanted).
pub fn refresh(app: &App, snap: &mut Snapshot) -> bool {
    let mut changed = false;
    for _ in 0..2 {
        let wanted = wanted(app, snap);
        let spectrum = spectrum_run(app, snap);
        changed |= snap.refresh(&wanted, spectrum.as_deref());
        if wanted == self::wanted(app, snap) && spectrum == spectrum_run(app, snap) {
            break;
        }
    }
    changed |= snap.refresh_pictures(&picture_runs(app, snap));
    changed
}

/// Carries out an action a key asked for; the outcome becomes the status message.
pub fn perform(action: Action, app: &mut App, snap: &Snapshot) {
    let db = snap.db();
    let outcome: Result<String> = match action {
        Action::StopRun(id) => Store::open_existing(&db).and_then(|s| {
            Ok(if s.request_stop(&id)? {
                format!("asked {id} to stop: it checkpoints at its next step")
            } else {
                format!("{id} is no longer running")
            })
        }),
        Action::Requeue(id) => Store::open_existing(&db).and_then(|s| {
            Ok(if s.requeue(&id)? {
                format!("requeued {id}: a running sweep picks it up (else n launches its sweep)")
            } else {
                format!("{id} cannot be requeued")
            })
        }),
        Action::Preview(file) => {
            let text = launch::preview(&file, snap.store());
            if let Mode::Launch(l) = &mut app.mode {
                l.preview = Some((file, text));
            }
            return;
        }
        Action::Tag(runs, tag) => Store::open_existing(&db).and_then(|s| {
            let n = s.tag(crate::store::tags::Target::Run, &runs, &tag)?;
            Ok(format!("tagged {} runs with {tag} ({n} newly)", runs.len()))
        }),
        Action::Launch(file) => launch::launch(&file, &db)
            .map(|log| format!("started {} (log {})", file.display(), log.display())),
    };
    app.message = Some(match outcome {
        Ok(m) => m,
        Err(e) => format!("error: {e:#}"),
    });
}

/// Renders one frame of `app` into a `width × height` buffer (tests and the benchmark).
pub fn render(app: &App, snap: &Snapshot, width: u16, height: u16) -> Result<Buffer> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    terminal.draw(|f| view::draw(f, app, snap))?;
    Ok(terminal.backend().buffer().clone())
}

/// The text of a rendered buffer, one line per row.
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Opens the TUI's read-only view of the store at `db`, first creating (and migrating) an
/// empty store when none exists there (a SQLite file not there yet, or a server database
/// without a workbench schema). Returns whether it was created. Every other bad state (an
/// unreadable file, another program's database, a newer schema) is refused as by
/// [`Snapshot::open`].
pub fn open(db: &Locator) -> Result<(Snapshot, bool)> {
    let created = !Store::exists(db)?;
    if created {
        Store::open(db).with_context(|| format!("{db}: cannot create an empty store"))?;
    }
    Ok((Snapshot::open(db)?, created))
}

/// Runs the TUI on the store at `db` until `q`.
pub fn run(db: &Locator, sweep: Option<String>, experiments: PathBuf) -> Result<()> {
    // bad states are messages before the terminal is taken over; a sweep asked for on a path
    // with no store yet cannot exist there, and nothing is created for it
    if let Some(s) = &sweep {
        anyhow::ensure!(
            Store::exists(db)?,
            "no sweep named {s:?}: there is no store at {db} yet (run a sweep first, or open the TUI without --sweep)"
        );
    }
    let (mut snap, created) = open(db)?;
    if let Some(s) = &sweep {
        snap.store().sweep(s)?;
    }
    let mut app = App::new(sweep, experiments);
    if created {
        app.message = Some(format!("created an empty store at {db}"));
    }
    refresh(&app, &mut snap);
    // watched after the store exists: the folder is watched, so a file created just now (or
    // its `-wal` file appearing later) is seen like any other
    let mut live = live::Live::watch(db);
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, &mut snap, &mut live);
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    snap: &mut Snapshot,
    live: &mut live::Live,
) -> Result<()> {
    loop {
        terminal.draw(|f| view::draw(f, app, snap))?;
        if app.quit {
            return Ok(());
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    if let Some(action) = app.on_key(k, snap) {
                        perform(action, app, snap);
                    }
                    refresh(app, snap);
                }
                // a resize redraws on the next turn of the loop
                _ => {}
            }
        }
        if live.due() {
            refresh(app, snap);
        }
    }
}
