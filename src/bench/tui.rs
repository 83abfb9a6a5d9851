//! `workbench bench-tui`: frame time per tab on a large store, and the time from a metric
//! commit (on another connection) to its value on screen.

use anyhow::Result;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::store::fill_store;
use crate::store::{Locator, Metric, Store};
use crate::tui::app::{App, Tab};
use crate::tui::live::Live;
use crate::tui::snapshot::Snapshot;
use crate::tui::{buffer_text, refresh, render};

/// Result of the TUI benchmark.
#[derive(Debug, Clone)]
pub struct TuiBenchResult {
    pub rows: usize,
    /// Mean milliseconds per frame (refresh + draw) per tab at 160×48.
    pub frame_ms: Vec<(&'static str, f64)>,
    pub commit_to_screen_ms: f64,
    /// Whether file notifications were active (else the 1 s poll found the change).
    pub notify: bool,
}

pub fn run(db: &Locator, runs: usize, rows: usize, frames: usize) -> Result<TuiBenchResult> {
    anyhow::ensure!(
        runs >= 1 && frames >= 1,
        "--runs and --frames must be at least 1"
    );
    let (planned, written) = fill_store(db, runs, rows)?;

    let mut snap = Snapshot::open(db)?;
    let mut app = App::new(None, "experiments".into());
    app.marked = planned.iter().take(8).map(|r| r.id.clone()).collect();
    let mut frame_ms = Vec::new();
    for tab in Tab::ALL {
        app.tab = tab;
        refresh(&app, &mut snap);
        render(&app, &snap, 160, 48)?;
        let t = Instant::now();
        for _ in 0..frames {
            refresh(&app, &mut snap);
            render(&app, &snap, 160, 48)?;
        }
        frame_ms.push((tab.title(), t.elapsed().as_secs_f64() * 1e3 / frames as f64));
    }

    // commit-to-screen: another connection writes a value the Runs tab shows
    app.tab = Tab::Runs;
    let mut live = Live::watch(db);
    let id = planned[0].id.clone();
    let (tx, rx) = mpsc::channel();
    let writer_db = db.clone();
    let writer = std::thread::spawn(move || -> Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        let mut w = Store::open(&writer_db)?;
        w.log_metrics(
            &id,
            &[Metric {
                key: "epoch/train_loss".into(),
                step: 1_000_000,
                epoch: 11,
                value: 0.4242,
                wall: 0.0,
            }],
        )?;
        let _ = tx.send(Instant::now());
        Ok(())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut committed = None;
    let latency = loop {
        if committed.is_none() {
            committed = rx.try_recv().ok();
        }
        if live.due() {
            refresh(&app, &mut snap);
            let text = buffer_text(&render(&app, &snap, 160, 48)?);
            if let (Some(c), true) = (committed, text.contains("0.424")) {
                break c.elapsed().as_secs_f64() * 1e3;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the committed value never reached the screen"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    Ok(TuiBenchResult {
        rows: written,
        frame_ms,
        commit_to_screen_ms: latency,
        notify: live.watching(),
    })
}
