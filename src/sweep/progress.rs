//! What `workbench sweep` shows while it runs, fed from the store like the TUI: on a terminal
//! an overall bar and one live line per running run (epoch/step, loss, img/s, ETA); otherwise
//! plain log lines, one per run and finished epoch.

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;

use crate::analysis::progress::{format_duration, run_progress, RunProgress};
use crate::config::RunConfig;
use crate::store::{now, RunRow, Status, Store};

pub struct ProgressView {
    bars: Option<(MultiProgress, ProgressBar)>,
    runs: HashMap<String, ProgressBar>,
    /// Plain mode: the last epoch printed per run.
    printed: HashMap<String, i64>,
}

/// One line describing a running run.
pub fn describe(p: &RunProgress) -> String {
    let mut parts = vec![format!("epoch {}/{}", p.epoch, p.epochs)];
    parts.push(match p.total_steps {
        Some(t) => format!("step {}/{t}", p.step),
        None => format!("step {}", p.step),
    });
    if let Some(l) = p.train_loss {
        parts.push(format!("loss {l:.4}"));
    }
    if let Some(v) = p.val_loss {
        parts.push(format!("val {v:.4}"));
    }
    if let Some(s) = p.img_per_s {
        parts.push(format!("{s:.0} img/s"));
    }
    if let Some(e) = p.eta {
        parts.push(format!("ETA {}", format_duration(e)));
    }
    parts.join("  ")
}

impl ProgressView {
    pub fn new(live: bool, total: usize) -> Self {
        let bars = live.then(|| {
            let mp = MultiProgress::new();
            let overall = mp.add(ProgressBar::new(total as u64));
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} runs {elapsed_precise} {msg}")
            {
                overall.set_style(style);
            }
            (mp, overall)
        });
        Self {
            bars,
            runs: HashMap::new(),
            printed: HashMap::new(),
        }
    }

    /// A log line (above the bars on a terminal).
    pub fn say(&self, line: &str) {
        match &self.bars {
            Some((mp, _)) => {
                let _ = mp.println(line);
            }
            None => println!("{line}"),
        }
    }

    /// Re-reads the running runs' latest metrics and redraws (or prints) their progress.
    pub fn update(&mut self, store: &Store, rows: &[RunRow]) -> Result<()> {
        let t = now();
        let running: Vec<&RunRow> = rows
            .iter()
            .filter(|r| r.status == Status::Running)
            .collect();
        let mut lines = Vec::new();
        for row in &running {
            let cfg: Option<RunConfig> = serde_json::from_str(&row.config).ok();
            let metrics = store.latest_metrics(&row.id)?;
            lines.push((row.id.clone(), run_progress(row, cfg.as_ref(), &metrics, t)));
        }
        match &self.bars {
            Some((mp, overall)) => {
                let finished = rows.iter().filter(|r| r.status == Status::Finished).count();
                let failed = rows.iter().filter(|r| r.status == Status::Failed).count();
                overall.set_position(finished as u64);
                overall.set_message(format!("{} running, {failed} failed", running.len()));
                self.runs.retain(|id, bar| {
                    let keep = running.iter().any(|r| &r.id == id);
                    if !keep {
                        bar.finish_and_clear();
                        mp.remove(bar);
                    }
                    keep
                });
                for (id, p) in lines {
                    let bar = self.runs.entry(id.clone()).or_insert_with(|| {
                        let b = mp.add(ProgressBar::new(1));
                        if let Ok(style) = ProgressStyle::with_template("  {prefix} {bar:20} {msg}")
                        {
                            b.set_style(style);
                        }
                        b.set_prefix(id.clone());
                        b
                    });
                    bar.set_length(p.total_steps.unwrap_or(0).max(p.step).max(1) as u64);
                    bar.set_position(p.step.max(0) as u64);
                    bar.set_message(describe(&p));
                }
            }
            None => {
                for (id, p) in lines {
                    let last = self.printed.get(&id).copied().unwrap_or(0);
                    if p.epoch > last {
                        println!("progress {id} {}", describe(&p));
                        self.printed.insert(id, p.epoch);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) {
        if let Some((mp, overall)) = &self.bars {
            for bar in self.runs.values() {
                bar.finish_and_clear();
                mp.remove(bar);
            }
            overall.finish_and_clear();
        }
        self.runs.clear();
    }
}
