//! The TUI's state and its key handling, as pure transitions: a key and the current
//! [`Snapshot`] give the next state and, for what needs the outside world (the store, a
//! process), an [`Action`].

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use std::path::PathBuf;

use super::keys::{self, Command, Scope};
use super::snapshot::Snapshot;
use crate::store::{RunRow, Status};

/// The tabs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Runs,
    Run,
    Compare,
    Spectrum,
    Sweeps,
    Pictures,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Runs,
        Tab::Run,
        Tab::Compare,
        Tab::Spectrum,
        Tab::Sweeps,
        Tab::Pictures,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Runs => "Runs",
            Tab::Run => "Run",
            Tab::Compare => "Compare",
            Tab::Spectrum => "Spectrum",
            Tab::Sweeps => "Sweeps",
            Tab::Pictures => "Pictures",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// EMA weights `s` cycles through (0 = off).
pub const SMOOTHING: [f64; 4] = [0.0, 0.6, 0.9, 0.99];

/// The x-axis of charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Step,
    Epoch,
    Wall,
}

impl XAxis {
    pub fn name(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Epoch => "epoch",
            XAxis::Wall => "wall s",
        }
    }
}

/// Chart controls shared by every chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartOpts {
    /// Index into [`SMOOTHING`].
    pub smoothing: usize,
    pub log_y: bool,
    pub x: XAxis,
}

impl ChartOpts {
    pub fn weight(&self) -> f64 {
        SMOOTHING[self.smoothing % SMOOTHING.len()]
    }
}

/// Metrics the Compare chart cycles through.
pub const COMPARE_METRICS: [&str; 4] = [
    "train/loss",
    "epoch/val_loss",
    "probe/lin/top1",
    "probe/tran-1/top1",
];

/// Columns of the Runs table the sort key cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Id,
    Status,
    Epoch,
    TrainLoss,
    ValLoss,
    Lin,
    Tran1,
    /// The feature monitor's last kNN top-1 (a search's trials best first).
    Knn,
    ImgPerS,
}

impl SortKey {
    pub const ALL: [SortKey; 10] = [
        SortKey::Created,
        SortKey::Id,
        SortKey::Status,
        SortKey::Epoch,
        SortKey::TrainLoss,
        SortKey::ValLoss,
        SortKey::Lin,
        SortKey::Tran1,
        SortKey::Knn,
        SortKey::ImgPerS,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::Id => "id",
            SortKey::Status => "status",
            SortKey::Epoch => "epoch",
            SortKey::TrainLoss => "train loss",
            SortKey::ValLoss => "val loss",
            SortKey::Lin => "lin",
            SortKey::Tran1 => "tran-1",
            SortKey::Knn => "kNN",
            SortKey::ImgPerS => "img/s",
        }
    }

    fn metric(self) -> Option<&'static str> {
        match self {
            SortKey::TrainLoss => Some("epoch/train_loss"),
            SortKey::ValLoss => Some("epoch/val_loss"),
            SortKey::Lin => Some("probe/lin/top1"),
            SortKey::Tran1 => Some("probe/tran-1/top1"),
            SortKey::Knn => Some("monitor/knn/top1"),
            SortKey::ImgPerS => Some("epoch/img_per_s"),
            _ => None,
        }
    }
}

/// The sweep launcher popup (`n`).
#[derive(Debug, Clone, PartialEq)]
pub struct Launcher {
    /// Sweep files found under experiments/.
    pub files: Vec<PathBuf>,
    /// Index into `files`; `files.len()` is the "type a path" entry.
    pub cursor: usize,
    pub typed: String,
    pub typing: bool,
    /// Dry run of the file under the cursor: (file, text or error).
    pub preview: Option<(PathBuf, String)>,
}

impl Launcher {
    pub fn chosen(&self) -> Option<PathBuf> {
        if self.cursor < self.files.len() {
            Some(self.files[self.cursor].clone())
        } else if !self.typed.trim().is_empty() {
            Some(PathBuf::from(self.typed.trim()))
        } else {
            None
        }
    }
}

/// Rows (runs, sweeps, help lines) a PgUp / PgDn moves by.
const PAGE: usize = 10;

/// What the app is doing with the keyboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing the filter.
    Filter,
    /// The key table, scrolled down by this many lines (↑↓, PgUp / PgDn, Home / End).
    Help(usize),
    /// Asking whether to stop this run.
    ConfirmStop(String),
    /// Typing a tag for the marked runs (the selected one when none is marked).
    Tag(String),
    Launch(Launcher),
}

/// Effects a key asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    StopRun(String),
    Requeue(String),
    /// Show the dry run of a sweep file in the launcher.
    Preview(PathBuf),
    Launch(PathBuf),
    /// Tag these runs.
    Tag(Vec<String>, String),
}

/// The TUI's state.
#[derive(Debug, Clone)]
pub struct App {
    pub tab: Tab,
    pub mode: Mode,
    pub filter: String,
    /// Only runs of this sweep (`--sweep`).
    pub sweep: Option<String>,
    pub cursor: usize,
    /// Runs marked for Compare, in marking order.
    pub marked: Vec<String>,
    pub pinned: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub chart: ChartOpts,
    pub compare_metric: usize,
    pub group_key: usize,
    /// Spectrum epoch (`None` = the newest).
    pub epoch: Option<i64>,
    /// Reconstruction epoch on the Pictures tab (`None` = the newest).
    pub picture_epoch: Option<i64>,
    /// Image of the fixed picture batch shown (Pictures and Compare tabs).
    pub picture_image: usize,
    /// Overlay the reference runs (imported logs) on the Run and Compare charts (`R`).
    pub references: bool,
    pub sweep_cursor: usize,
    pub message: Option<String>,
    pub quit: bool,
    /// Sweep files offered by the launcher.
    pub experiments: PathBuf,
    /// Lines of the key table the help popup showed at its last draw (the view sets it), so
    /// that scrolling stops at the last full page.
    pub help_rows: std::cell::Cell<usize>,
}

impl App {
    pub fn new(sweep: Option<String>, experiments: PathBuf) -> App {
        App {
            tab: Tab::Runs,
            mode: Mode::Normal,
            filter: String::new(),
            sweep,
            cursor: 0,
            marked: Vec::new(),
            pinned: None,
            sort: SortKey::Created,
            descending: false,
            chart: ChartOpts {
                smoothing: 0,
                log_y: false,
                x: XAxis::Step,
            },
            compare_metric: 0,
            group_key: 0,
            epoch: None,
            picture_epoch: None,
            picture_image: 0,
            references: true,
            sweep_cursor: 0,
            message: None,
            quit: false,
            experiments,
            help_rows: std::cell::Cell::new(keys::BINDINGS.len()),
        }
    }

    /// Does run `r` pass the `--sweep` and `/` filters?
    fn passes(&self, r: &RunRow, snap: &Snapshot) -> bool {
        if self.sweep.as_ref().is_some_and(|s| &r.sweep != s) {
            return false;
        }
        let f = self.filter.to_lowercase();
        if f.is_empty() {
            return true;
        }
        if let Some(tag) = f.strip_prefix("tag:") {
            return snap
                .tags
                .get(&r.id)
                .is_some_and(|t| t.iter().any(|t| t.to_lowercase() == tag));
        }
        if let Some(word) = f.strip_prefix("note:") {
            return snap
                .notes
                .get(&r.id)
                .is_some_and(|n| n.iter().any(|n| n.to_lowercase().contains(word)));
        }
        r.id.contains(&f)
            || r.sweep.to_lowercase().contains(&f)
            || r.status.as_str().contains(&f)
            || snap.params.get(&r.id).is_some_and(|p| {
                p.iter()
                    .any(|(k, v)| format!("{k}={v}").to_lowercase().contains(&f))
            })
    }

    /// The runs the Runs table lists: filtered, sorted, the pinned run first.
    pub fn visible<'a>(&self, snap: &'a Snapshot) -> Vec<&'a RunRow> {
        let mut rows: Vec<&RunRow> = snap.runs.iter().filter(|r| self.passes(r, snap)).collect();
        let key = self.sort;
        let metric = |r: &RunRow| {
            key.metric()
                .and_then(|m| snap.value(&r.id, m))
                .unwrap_or(f64::NAN)
        };
        rows.sort_by(|a, b| {
            let o = match key {
                SortKey::Created => a.created.total_cmp(&b.created),
                SortKey::Id => a.id.cmp(&b.id),
                SortKey::Status => a.status.cmp(&b.status),
                SortKey::Epoch => {
                    let e = |r: &RunRow| snap.progress.get(&r.id).map_or(0, |p| p.epoch);
                    e(a).cmp(&e(b))
                }
                _ => {
                    // runs without the metric sort last either way
                    let (x, y) = (metric(a), metric(b));
                    match (x.is_nan(), y.is_nan()) {
                        (true, false) => return std::cmp::Ordering::Greater,
                        (false, true) => return std::cmp::Ordering::Less,
                        _ => x.total_cmp(&y),
                    }
                }
            };
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
        if let Some(p) = &self.pinned {
            if let Some(i) = rows.iter().position(|r| &r.id == p) {
                let r = rows.remove(i);
                rows.insert(0, r);
            }
        }
        rows
    }

    /// The run under the cursor.
    pub fn selected(&self, snap: &Snapshot) -> Option<String> {
        let rows = self.visible(snap);
        rows.get(self.cursor.min(rows.len().saturating_sub(1)))
            .map(|r| r.id.clone())
    }

    /// Runs drawn on the Compare tab: the marked ones, the pinned baseline first.
    pub fn compared(&self) -> Vec<String> {
        let mut out: Vec<String> = self.pinned.iter().cloned().collect();
        out.extend(
            self.marked
                .iter()
                .filter(|m| Some(*m) != self.pinned.as_ref())
                .cloned(),
        );
        out
    }

    fn scope_applies(&self, scope: Scope) -> bool {
        match scope {
            Scope::All => true,
            Scope::Runs => self.tab == Tab::Runs,
            Scope::Charts => matches!(self.tab, Tab::Run | Tab::Compare),
            Scope::Compare => self.tab == Tab::Compare,
            Scope::Epochs => matches!(self.tab, Tab::Spectrum | Tab::Pictures),
            Scope::Pictures => matches!(self.tab, Tab::Pictures | Tab::Compare),
        }
    }

    fn rows_len(&self, snap: &Snapshot) -> usize {
        match self.tab {
            Tab::Sweeps => snap.sweeps.len(),
            _ => self.visible(snap).len(),
        }
    }

    fn move_cursor(&mut self, snap: &Snapshot, to: impl FnOnce(usize, usize) -> usize) {
        let n = self.rows_len(snap);
        let cur = if self.tab == Tab::Sweeps {
            &mut self.sweep_cursor
        } else {
            &mut self.cursor
        };
        *cur = if n == 0 { 0 } else { to(*cur, n).min(n - 1) };
    }

    /// Handles one key; returns the effect it asks for, if any.
    pub fn on_key(&mut self, key: KeyEvent, snap: &Snapshot) -> Option<Action> {
        match self.mode.clone() {
            Mode::Help(top) => {
                let total = keys::BINDINGS.len();
                let last_top = total - self.help_rows.get().min(total);
                self.mode = match key.code {
                    KeyCode::Up | KeyCode::Char('k') => Mode::Help(top.saturating_sub(1)),
                    KeyCode::Down | KeyCode::Char('j') => Mode::Help((top + 1).min(last_top)),
                    KeyCode::PageUp => Mode::Help(top.saturating_sub(PAGE)),
                    KeyCode::PageDown => Mode::Help((top + PAGE).min(last_top)),
                    KeyCode::Home => Mode::Help(0),
                    KeyCode::End => Mode::Help(last_top),
                    _ => Mode::Normal,
                };
                None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.cursor = 0;
                None
            }
            Mode::ConfirmStop(id) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Enter) {
                    Some(Action::StopRun(id))
                } else {
                    self.message = Some("stop cancelled".into());
                    None
                }
            }
            Mode::Launch(l) => self.on_launcher_key(key, l),
            Mode::Tag(mut typed) => match key.code {
                KeyCode::Enter if !typed.is_empty() => {
                    self.mode = Mode::Normal;
                    let runs = self.tag_targets(snap);
                    (!runs.is_empty()).then_some(Action::Tag(runs, typed))
                }
                KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.message = Some("tagging cancelled".into());
                    None
                }
                KeyCode::Backspace => {
                    typed.pop();
                    self.mode = Mode::Tag(typed);
                    None
                }
                KeyCode::Char(c) => {
                    typed.push(c);
                    self.mode = Mode::Tag(typed);
                    None
                }
                _ => None,
            },
            Mode::Normal => {
                let cmd = keys::command(key)?;
                let scope = keys::BINDINGS
                    .iter()
                    .find(|b| b.command == cmd)
                    .map_or(Scope::All, |b| b.scope);
                if !self.scope_applies(scope) {
                    return None;
                }
                self.on_command(cmd, snap)
            }
        }
    }

    fn on_launcher_key(&mut self, key: KeyEvent, mut l: Launcher) -> Option<Action> {
        let mut action = None;
        if l.typing {
            match key.code {
                KeyCode::Esc => l.typing = false,
                KeyCode::Backspace => {
                    l.typed.pop();
                }
                KeyCode::Enter => {
                    l.typing = false;
                    action = l.chosen().map(Action::Preview);
                }
                KeyCode::Char(c) => l.typed.push(c),
                _ => {}
            }
            self.mode = Mode::Launch(l);
            return action;
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                return None;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                l.cursor = l.cursor.saturating_sub(1);
                l.preview = None;
            }
            KeyCode::Down | KeyCode::Char('j') => {
                l.cursor = (l.cursor + 1).min(l.files.len());
                l.preview = None;
            }
            KeyCode::Enter => match l.chosen() {
                Some(f) if l.preview.as_ref().is_some_and(|(p, _)| *p == f) => {
                    self.mode = Mode::Normal;
                    return Some(Action::Launch(f));
                }
                Some(f) => action = Some(Action::Preview(f)),
                None => l.typing = true,
            },
            KeyCode::Char('i') if l.cursor == l.files.len() => l.typing = true,
            _ => {}
        }
        self.mode = Mode::Launch(l);
        action
    }

    fn on_command(&mut self, cmd: Command, snap: &Snapshot) -> Option<Action> {
        self.message = None;
        let n_tabs = Tab::ALL.len();
        match cmd {
            Command::Quit => self.quit = true,
            Command::NextTab => self.tab = Tab::ALL[(self.tab.index() + 1) % n_tabs],
            Command::PrevTab => self.tab = Tab::ALL[(self.tab.index() + n_tabs - 1) % n_tabs],
            Command::Tab(i) => self.tab = Tab::ALL[i.min(n_tabs - 1)],
            Command::Up => self.move_cursor(snap, |c, _| c.saturating_sub(1)),
            Command::Down => self.move_cursor(snap, |c, _| c + 1),
            Command::PageUp => self.move_cursor(snap, |c, _| c.saturating_sub(PAGE)),
            Command::PageDown => self.move_cursor(snap, |c, _| c + PAGE),
            Command::Top => self.move_cursor(snap, |_, _| 0),
            Command::Bottom => self.move_cursor(snap, |_, n| n.saturating_sub(1)),
            Command::Open => {
                if self.selected(snap).is_some() {
                    self.tab = Tab::Run;
                    self.epoch = None;
                    self.picture_epoch = None;
                }
            }
            Command::Mark => {
                if let Some(id) = self.selected(snap) {
                    match self.marked.iter().position(|m| *m == id) {
                        Some(i) => {
                            self.marked.remove(i);
                        }
                        None => self.marked.push(id),
                    }
                }
            }
            Command::Pin => {
                if let Some(id) = self.selected(snap) {
                    self.pinned = if self.pinned.as_ref() == Some(&id) {
                        None
                    } else {
                        Some(id)
                    };
                    self.cursor = 0;
                }
            }
            Command::Filter => self.mode = Mode::Filter,
            Command::Tag => {
                if self.tag_targets(snap).is_empty() {
                    self.message = Some("no run to tag: mark runs with Space".into());
                } else {
                    self.mode = Mode::Tag(String::new());
                }
            }
            Command::Sort => {
                let i = SortKey::ALL
                    .iter()
                    .position(|k| *k == self.sort)
                    .unwrap_or(0);
                self.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
            }
            Command::SortReverse => self.descending = !self.descending,
            Command::Smoothing => {
                self.chart.smoothing = (self.chart.smoothing + 1) % SMOOTHING.len()
            }
            Command::LogY => self.chart.log_y = !self.chart.log_y,
            Command::References => {
                self.references = !self.references;
                self.message = Some(format!(
                    "reference runs {}",
                    if self.references {
                        "shown (dotted)"
                    } else {
                        "hidden"
                    }
                ));
            }
            Command::XAxis => {
                self.chart.x = match self.chart.x {
                    XAxis::Step => XAxis::Epoch,
                    XAxis::Epoch => XAxis::Wall,
                    XAxis::Wall => XAxis::Step,
                }
            }
            Command::Metric => {
                self.compare_metric = (self.compare_metric + 1) % COMPARE_METRICS.len()
            }
            Command::GroupBy => self.group_key += 1,
            Command::EpochPrev | Command::EpochNext if self.tab == Tab::Pictures => {
                self.step_picture_epoch(cmd == Command::EpochNext, snap)
            }
            Command::EpochPrev | Command::EpochNext => {
                self.step_epoch(cmd == Command::EpochNext, snap)
            }
            Command::ImagePrev => self.picture_image = self.picture_image.saturating_sub(1),
            Command::ImageNext => {
                let images = self.picture_images(snap);
                self.picture_image = (self.picture_image + 1).min(images.saturating_sub(1));
            }
            Command::Stop => match self.selected(snap).and_then(|id| snap.run(&id).cloned()) {
                Some(r) if r.status == Status::Running => self.mode = Mode::ConfirmStop(r.id),
                Some(r) => self.message = Some(format!("{} is {}, not running", r.id, r.status)),
                None => {}
            },
            Command::Requeue => match self.selected(snap).and_then(|id| snap.run(&id).cloned()) {
                Some(r) if matches!(r.status, Status::Failed | Status::Stopped) => {
                    return Some(Action::Requeue(r.id));
                }
                Some(r) => {
                    self.message = Some(format!(
                        "{} is {}: only failed or stopped runs requeue",
                        r.id, r.status
                    ))
                }
                None => {}
            },
            Command::Launch => {
                self.mode = Mode::Launch(Launcher {
                    files: super::launch::sweep_files(&self.experiments),
                    cursor: 0,
                    typed: String::new(),
                    typing: false,
                    preview: None,
                })
            }
            Command::Help => self.mode = Mode::Help(0),
        }
        None
    }

    /// Steps the Spectrum tab's epoch through the stored epochs of the selected run.
    /// The runs `t` tags: the marked ones, else the selected one.
    fn tag_targets(&self, snap: &Snapshot) -> Vec<String> {
        if self.marked.is_empty() {
            self.selected(snap).into_iter().collect()
        } else {
            self.marked.clone()
        }
    }

    /// Images in the fixed picture batch of the runs shown (at least 1).
    fn picture_images(&self, snap: &Snapshot) -> usize {
        snap.pictures
            .values()
            .flat_map(|p| p.iter().map(|p| p.item as usize + 1))
            .max()
            .unwrap_or(1)
    }

    /// The epochs with reconstructions of the selected run, oldest first.
    pub fn picture_epochs(&self, snap: &Snapshot) -> Vec<i64> {
        let mut epochs: Vec<i64> = self
            .selected(snap)
            .and_then(|id| snap.pictures.get(&id))
            .map(|p| p.iter().map(|p| p.epoch).collect())
            .unwrap_or_default();
        epochs.dedup();
        epochs
    }

    fn step_picture_epoch(&mut self, forward: bool, snap: &Snapshot) {
        let epochs = self.picture_epochs(snap);
        if let Some(j) = step(&epochs, self.picture_epoch, forward) {
            // stepping onto the newest follows new epochs as they arrive
            self.picture_epoch = (j + 1 < epochs.len()).then(|| epochs[j]);
        }
    }

    fn step_epoch(&mut self, forward: bool, snap: &Snapshot) {
        let Some((_, spectra)) = &snap.spectra else {
            return;
        };
        let mut epochs: Vec<i64> = spectra.iter().map(|s| s.epoch).collect();
        epochs.dedup();
        if let Some(j) = step(&epochs, self.epoch, forward) {
            self.epoch = Some(epochs[j]);
        }
    }
}

/// The index one step from `current` (`None`: the newest) in the ascending `epochs`, held at
/// both ends; `None` when there are none.
fn step(epochs: &[i64], current: Option<i64>, forward: bool) -> Option<usize> {
    let last = epochs.len().checked_sub(1)?;
    let i = current
        .and_then(|c| epochs.iter().position(|e| *e == c))
        .unwrap_or(last);
    Some(if forward {
        (i + 1).min(last)
    } else {
        i.saturating_sub(1)
    })
}
