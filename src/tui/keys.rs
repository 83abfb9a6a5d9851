//! The key table: every binding once, used both to dispatch keys and to draw the help popup.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Runs,
    Charts,
    Compare,
    /// The Spectrum and Pictures tabs (epoch stepping).
    Epochs,
    /// The Pictures and Compare tabs (image stepping).
    Pictures,
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    NextTab,
    PrevTab,
    Tab(usize),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Mark,
    Pin,
    Filter,
    Tag,
    Sort,
    SortReverse,
    Smoothing,
    LogY,
    References,
    XAxis,
    Metric,
    GroupBy,
    EpochPrev,
    EpochNext,
    ImagePrev,
    ImageNext,
    Stop,
    Requeue,
    Launch,
    Help,
}

/// One binding: keys, what they do, where, and the help text.
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub command: Command,
    pub scope: Scope,
    pub help: &'static str,
}

const fn b(
    keys: &'static [KeyCode],
    label: &'static str,
    command: Command,
    scope: Scope,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        command,
        scope,
        help,
    }
}

use Command as C;
use KeyCode as K;
use Scope as S;

/// Every key binding of the TUI.
pub const BINDINGS: &[Binding] = &[
    b(&[K::Char('q')], "q", C::Quit, S::All, "quit"),
    b(&[K::Tab], "Tab", C::NextTab, S::All, "next tab"),
    b(&[K::BackTab], "S-Tab", C::PrevTab, S::All, "previous tab"),
    b(&[K::Char('1')], "1", C::Tab(0), S::All, "Runs tab"),
    b(
        &[K::Char('2')],
        "2",
        C::Tab(1),
        S::All,
        "Run tab (selected run)",
    ),
    b(
        &[K::Char('3')],
        "3",
        C::Tab(2),
        S::All,
        "Compare tab (marked runs)",
    ),
    b(
        &[K::Char('4')],
        "4",
        C::Tab(3),
        S::All,
        "Spectrum tab (selected run)",
    ),
    b(&[K::Char('5')], "5", C::Tab(4), S::All, "Sweeps tab"),
    b(
        &[K::Char('6')],
        "6",
        C::Tab(5),
        S::All,
        "Pictures tab (selected run's reconstructions)",
    ),
    b(&[K::Up, K::Char('k')], "↑/k", C::Up, S::All, "move up"),
    b(
        &[K::Down, K::Char('j')],
        "↓/j",
        C::Down,
        S::All,
        "move down",
    ),
    b(&[K::PageUp], "PgUp", C::PageUp, S::All, "page up"),
    b(&[K::PageDown], "PgDn", C::PageDown, S::All, "page down"),
    b(
        &[K::Home, K::Char('g')],
        "Home/g",
        C::Top,
        S::All,
        "first row",
    ),
    b(
        &[K::End, K::Char('G')],
        "End/G",
        C::Bottom,
        S::All,
        "last row",
    ),
    b(
        &[K::Enter],
        "Enter",
        C::Open,
        S::Runs,
        "open the selected run",
    ),
    b(
        &[K::Char(' ')],
        "Space",
        C::Mark,
        S::Runs,
        "mark / unmark for Compare",
    ),
    b(
        &[K::Char('p')],
        "p",
        C::Pin,
        S::Runs,
        "pin / unpin as baseline",
    ),
    b(
        &[K::Char('/')],
        "/",
        C::Filter,
        S::Runs,
        "filter (id, sweep, params; tag:NAME, note:word)",
    ),
    b(
        &[K::Char('t')],
        "t",
        C::Tag,
        S::Runs,
        "tag the marked runs (else the selected one)",
    ),
    b(
        &[K::Char('o')],
        "o",
        C::Sort,
        S::Runs,
        "sort by the next column",
    ),
    b(
        &[K::Char('O')],
        "O",
        C::SortReverse,
        S::Runs,
        "reverse the sort",
    ),
    b(
        &[K::Char('s')],
        "s",
        C::Smoothing,
        S::Charts,
        "smoothing: off / EMA 0.6 / 0.9 / 0.99",
    ),
    b(
        &[K::Char('l')],
        "l",
        C::LogY,
        S::Charts,
        "log y-axis on / off",
    ),
    b(
        &[K::Char('R')],
        "R",
        C::References,
        S::Charts,
        "reference runs (imported logs) on / off",
    ),
    b(
        &[K::Char('x')],
        "x",
        C::XAxis,
        S::Charts,
        "x-axis: step / epoch / wall time",
    ),
    b(
        &[K::Char('m')],
        "m",
        C::Metric,
        S::Compare,
        "next metric on the chart",
    ),
    b(
        &[K::Char('b')],
        "b",
        C::GroupBy,
        S::Compare,
        "group the ablation table by the next key",
    ),
    b(&[K::Left], "←", C::EpochPrev, S::Epochs, "previous epoch"),
    b(&[K::Right], "→", C::EpochNext, S::Epochs, "next epoch"),
    b(
        &[K::Char('[')],
        "[",
        C::ImagePrev,
        S::Pictures,
        "previous image of the picture batch",
    ),
    b(
        &[K::Char(']')],
        "]",
        C::ImageNext,
        S::Pictures,
        "next image of the picture batch",
    ),
    b(
        &[K::Char('S')],
        "S",
        C::Stop,
        S::Runs,
        "checkpoint and stop the selected running run",
    ),
    b(
        &[K::Char('r')],
        "r",
        C::Requeue,
        S::Runs,
        "requeue the selected failed / stopped run",
    ),
    b(
        &[K::Char('n')],
        "n",
        C::Launch,
        S::All,
        "launch a sweep (experiments/*.toml or a path)",
    ),
    b(&[K::Char('?')], "?", C::Help, S::All, "this help"),
];

/// The command bound to `key` (any scope; the app decides whether it applies).
pub fn command(key: KeyEvent) -> Option<Command> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == K::Char('c') {
        return Some(C::Quit);
    }
    BINDINGS
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_meaning() {
        let mut seen: Vec<KeyCode> = Vec::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} bound twice");
                seen.push(*k);
            }
        }
        let q = KeyEvent::new(K::Char('q'), KeyModifiers::NONE);
        assert_eq!(command(q), Some(C::Quit));
        let ctrl_c = KeyEvent::new(K::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(command(ctrl_c), Some(C::Quit));
    }
}
