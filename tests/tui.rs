//! The TUI against fixture stores built through the store API: what each tab shows (rendered
//! with ratatui's TestBackend), key handling as pure state transitions, and bad states.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

use qbheat_workbench::config::RunConfig;
use qbheat_workbench::spec::Position;
use qbheat_workbench::store::{
    Locator, MatrixSpectrum, Metric, NewRun, ScaleSpectrum, Status, Store,
};
use qbheat_workbench::tui::app::{Action, App, Mode, Tab};
use qbheat_workbench::tui::snapshot::Snapshot;
use qbheat_workbench::tui::view::{self, chart};
use qbheat_workbench::tui::{buffer_text, refresh, render};

/// lin top-1 of the fixture runs: position × seed.
const LIN: [[f64; 3]; 3] = [[0.60, 0.62, 0.64], [0.70, 0.71, 0.75], [0.80, 0.81, 0.79]];

fn spectrum(scale: &str, epoch: i64) -> ScaleSpectrum {
    let m = |name: &str, k: f64| MatrixSpectrum {
        name: name.into(),
        eig_re: vec![2.0 * k, -k, 0.5 * k],
        eig_im: vec![0.0, 0.5, -0.5],
        energy: 3.0 * k,
        rank: 3,
        condition: 4.0,
        complex_fraction: 2.0 / 3.0,
    };
    ScaleSpectrum {
        scale: scale.into(),
        delta: 0.5,
        matrices: vec![m("A", 1.0 + epoch as f64 * 0.1), m("B", 1.2)],
        energy_ratio: 0.9 + 0.01 * epoch as f64,
        commutator: 0.2,
    }
}

/// 3 positions × 3 seeds, finished, with a train loss curve, epoch metrics, a lin probe and
/// (for the first run) spectra of both scales over 3 epochs.
fn fixture(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let db = dir.join("t.db");
    let mut s = Store::open(&db).unwrap();
    let mut runs = Vec::new();
    for pos in [Position::Corner, Position::Center, Position::CornerCenter] {
        for seed in 0..3u64 {
            let mut c = RunConfig::default();
            c.masking.position = pos;
            c.seed = seed;
            c.train.epochs = 3;
            runs.push(NewRun::from_config(&c));
        }
    }
    s.register_sweep("fx", "fx.toml", &runs).unwrap();
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    for (k, id) in ids.iter().enumerate() {
        let mut rows: Vec<Metric> = (1..=20)
            .map(|step| Metric {
                key: "train/loss".into(),
                step,
                epoch: 1 + (step - 1) / 7,
                value: 2.0 / step as f64 + 0.01 * k as f64,
                wall: 1000.0 + step as f64,
            })
            .collect();
        for (key, value) in [
            ("epoch/train_loss", 0.5 + 0.01 * k as f64),
            ("epoch/val_loss", 0.6 + 0.01 * k as f64),
            ("epoch/img_per_s", 300.0),
            ("probe/lin/top1", LIN[k / 3][k % 3]),
        ] {
            rows.push(Metric {
                key: key.into(),
                step: 21,
                epoch: 3,
                value,
                wall: 1021.0,
            });
        }
        s.log_metrics(id, &rows).unwrap();
        s.set_status(id, Status::Finished, None).unwrap();
    }
    for e in 1..=3 {
        s.log_spectra(&ids[0], e, &[spectrum("corner", e), spectrum("center", e)])
            .unwrap();
    }
    (db, ids)
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn screen(app: &App, snap: &mut Snapshot, w: u16, h: u16) -> String {
    refresh(app, snap);
    buffer_text(&render(app, snap, w, h).unwrap())
}

#[test]
fn runs_tab_lists_every_run_and_only_the_differing_params() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let app = App::new(None, "experiments".into());
    let text = screen(&app, &mut snap, 160, 48);
    for id in &ids {
        assert!(text.contains(id.as_str()), "{id} missing:\n{text}");
    }
    let header = text.lines().find(|l| l.contains(" id ")).unwrap();
    assert!(
        header.contains("position") && header.contains("seed"),
        "{header}"
    );
    for same in ["preset", "base_lr", "epochs", "dim"] {
        assert!(!header.contains(same), "{same} does not differ: {header}");
    }
    assert!(text.contains("62.0"), "lin shown in %:\n{text}");
}

#[test]
fn compare_table_is_mean_and_std_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.tab = Tab::Compare;
    let text = screen(&app, &mut snap, 160, 48);
    for (i, lin) in LIN.iter().enumerate() {
        // by hand: mean and sample std of the three seeds, in %
        let mean = lin.iter().sum::<f64>() / 3.0;
        let std = (lin.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let cell = format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * std);
        assert!(text.contains(&cell), "group {i}: {cell} not in\n{text}");
    }
    assert!(text.contains("ablation by masking.position"), "{text}");
}

#[test]
fn chart_axes_span_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.tab = Tab::Run;
    let text = screen(&app, &mut snap, 160, 48);
    // train loss of the first run: steps 1..=20, values 2.0 .. 0.1 (+5 % margin on y)
    assert!(
        text.contains("1.000") && text.contains("20.000"),
        "x span:\n{text}"
    );
    assert!(text.contains("2.095"), "y top 2.0 + 5 %:\n{text}");
    let rows = &snap.series[&(snap.runs[0].id.clone(), "train/loss".to_string())];
    let pts = chart::points(rows, &app.chart, 200, None, 0.0);
    assert_eq!(chart::x_bounds(pts.iter().map(|p| p.0)), [1.0, 20.0]);
}

#[test]
fn spectrum_shows_one_point_per_eigenvalue() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.tab = Tab::Spectrum;
    app.filter = ids[0].clone();
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("epoch 3"), "{text}");
    let (run, spectra) = snap.spectra.as_ref().unwrap();
    assert_eq!(run, &ids[0]);
    let series = view::spectrum_eigen_series(spectra, 3);
    let eigenvalues: usize = spectra
        .iter()
        .filter(|s| s.epoch == 3)
        .flat_map(|s| &s.spectrum.matrices)
        .map(|m| m.eig_re.len())
        .sum();
    assert_eq!(
        series.iter().map(|s| s.points.len()).sum::<usize>(),
        eigenvalues
    );
    assert_eq!(eigenvalues, 12);
    // ←/→ step through the stored epochs
    app.on_key(key(KeyCode::Left), &snap);
    assert_eq!(app.epoch, Some(2));
    app.on_key(key(KeyCode::Right), &snap);
    app.on_key(key(KeyCode::Right), &snap);
    assert_eq!(app.epoch, Some(3));
}

#[test]
fn every_tab_renders_at_80x24_and_160x48_and_small_terminals_get_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.marked = snap_ids(&mut snap, &app).into_iter().take(3).collect();
    for (w, h) in [(80, 24), (160, 48)] {
        for tab in Tab::ALL {
            app.tab = tab;
            let text = screen(&app, &mut snap, w, h);
            assert!(text.contains("1 Runs"), "{tab:?} {w}x{h}:\n{text}");
            let marker = match tab {
                Tab::Runs => "finished",
                Tab::Run => "train loss",
                Tab::Compare => "ablation",
                Tab::Spectrum => "eigenvalues",
                Tab::Sweeps => "fx",
                Tab::Pictures => "no reconstructions stored",
            };
            assert!(text.contains(marker), "{tab:?} {w}x{h}: {marker}\n{text}");
        }
    }
    let text = screen(&app, &mut snap, 60, 20);
    assert!(
        text.contains("terminal too small") && text.contains("80x24"),
        "{text}"
    );
}

fn snap_ids(snap: &mut Snapshot, app: &App) -> Vec<String> {
    refresh(app, snap);
    snap.runs.iter().map(|r| r.id.clone()).collect()
}

#[test]
fn keys_are_pure_state_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    refresh(&app, &mut snap);
    // tab cycling
    app.on_key(key(KeyCode::Tab), &snap);
    assert_eq!(app.tab, Tab::Run);
    app.on_key(key(KeyCode::BackTab), &snap);
    app.on_key(key(KeyCode::BackTab), &snap);
    assert_eq!(app.tab, Tab::Pictures);
    app.on_key(key(KeyCode::BackTab), &snap);
    assert_eq!(app.tab, Tab::Sweeps);
    app.on_key(ch('1'), &snap);
    assert_eq!(app.tab, Tab::Runs);
    // select (mark) and unmark
    app.on_key(ch(' '), &snap);
    app.on_key(ch('j'), &snap);
    app.on_key(ch(' '), &snap);
    assert_eq!(app.marked, vec![ids[0].clone(), ids[1].clone()]);
    app.on_key(ch(' '), &snap);
    assert_eq!(app.marked, vec![ids[0].clone()]);
    // pin a baseline: it moves to the top, and a second p unpins
    app.on_key(ch('G'), &snap);
    app.on_key(ch('p'), &snap);
    let last = ids.last().unwrap().clone();
    assert_eq!(app.pinned, Some(last.clone()));
    assert_eq!(app.visible(&snap)[0].id, last);
    assert_eq!(app.compared()[0], last);
    app.on_key(ch('p'), &snap);
    assert_eq!(app.pinned, None);
    // filter: typing narrows the list, Enter keeps it, Esc clears it
    app.on_key(ch('/'), &snap);
    assert_eq!(app.mode, Mode::Filter);
    for c in "center".chars() {
        app.on_key(ch(c), &snap);
    }
    app.on_key(key(KeyCode::Enter), &snap);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.visible(&snap).len(), 6, "center and corner+center");
    app.on_key(ch('/'), &snap);
    app.on_key(key(KeyCode::Esc), &snap);
    assert_eq!(app.visible(&snap).len(), 9);
    // q quits
    app.on_key(ch('q'), &snap);
    assert!(app.quit);
}

#[test]
fn stopping_asks_first_and_cancel_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    Store::open(&db)
        .unwrap()
        .set_status(&ids[0], Status::Running, None)
        .unwrap();
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    refresh(&app, &mut snap);
    // a finished run is not stopped
    app.on_key(ch('j'), &snap);
    assert_eq!(app.on_key(ch('S'), &snap), None);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.message.as_deref().unwrap().contains("not running"));
    // the running one asks; n cancels
    app.on_key(ch('g'), &snap);
    assert_eq!(app.on_key(ch('S'), &snap), None);
    assert_eq!(app.mode, Mode::ConfirmStop(ids[0].clone()));
    assert_eq!(app.on_key(ch('n'), &snap), None);
    assert_eq!(app.mode, Mode::Normal);
    // y confirms
    app.on_key(ch('S'), &snap);
    assert_eq!(
        app.on_key(ch('y'), &snap),
        Some(Action::StopRun(ids[0].clone()))
    );
    qbheat_workbench::tui::perform(Action::StopRun(ids[0].clone()), &mut app, &snap);
    let s = Store::open_read_only(&db).unwrap();
    assert!(s.run(&ids[0]).unwrap().stop_requested);
    // r requeues only failed / stopped runs
    app.on_key(ch('j'), &snap);
    assert_eq!(app.on_key(ch('r'), &snap), None);
}

#[test]
fn help_is_generated_from_the_key_table() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.on_key(ch('?'), &snap);
    assert_eq!(app.mode, Mode::Help(0));
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("keys (any key closes)"), "{text}");
    for b in qbheat_workbench::tui::keys::BINDINGS {
        assert!(text.contains(b.help), "{} missing from help", b.help);
    }
    app.on_key(ch('x'), &snap);
    assert_eq!(app.mode, Mode::Normal);
}

/// On an 80 × 24 terminal the key table does not fit: the help says which lines it shows,
/// scrolls with ↑↓ / PgUp PgDn / Home End and stops at the last full page, and every binding
/// is on the first page or the last.
#[test]
fn help_scrolls_on_a_small_terminal() {
    let bindings = qbheat_workbench::tui::keys::BINDINGS;
    let total = bindings.len();
    assert!(
        total > 22,
        "the table fits in 24 rows: this test no longer tests scrolling"
    );
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fixture(dir.path());
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.on_key(ch('?'), &snap);
    let first = screen(&app, &mut snap, 80, 24);
    assert!(first.contains(&format!("keys 1–22 of {total}")), "{first}");
    app.on_key(key(KeyCode::End), &snap);
    let last_top = total - 22;
    assert_eq!(app.mode, Mode::Help(last_top));
    let last = screen(&app, &mut snap, 80, 24);
    assert!(
        last.contains(&format!("keys {}–{total} of {total}", last_top + 1)),
        "{last}"
    );
    for b in bindings {
        let line = format!("{:>7}  {}", b.label, b.help);
        assert!(
            first.contains(&line) || last.contains(&line),
            "{line:?} on neither page"
        );
    }
    // past the last page nothing moves; one line up shows one line more of the top
    app.on_key(key(KeyCode::Down), &snap);
    app.on_key(key(KeyCode::PageDown), &snap);
    assert_eq!(app.mode, Mode::Help(last_top));
    app.on_key(key(KeyCode::Up), &snap);
    let up = screen(&app, &mut snap, 80, 24);
    assert!(
        up.contains(&format!("keys {last_top}–{} of {total}", total - 1)),
        "{up}"
    );
    app.on_key(key(KeyCode::Home), &snap);
    assert_eq!(app.mode, Mode::Help(0));
    app.on_key(key(KeyCode::PageDown), &snap);
    assert_eq!(app.mode, Mode::Help(10));
    app.on_key(key(KeyCode::Esc), &snap);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn bad_states_are_messages() {
    let dir = tempfile::tempdir().unwrap();
    // the read-only view alone does not create a store (`tui::open` does: see below)
    let missing = dir.path().join("none.db");
    let e = Snapshot::open(&missing).err().unwrap().to_string();
    assert!(e.contains("no such database"), "{e}");
    assert!(!missing.exists());
    // an empty store says so
    let empty = dir.path().join("empty.db");
    Store::open(&empty).unwrap();
    let mut snap = Snapshot::open(&empty).unwrap();
    let app = App::new(None, "experiments".into());
    let text = screen(&app, &mut snap, 100, 30);
    assert!(text.contains("is empty"), "{text}");
    // a run without metrics: charts say there is no data yet
    let (db, _) = fixture(dir.path());
    {
        let mut s = Store::open(&db).unwrap();
        let c = RunConfig {
            seed: 99,
            ..Default::default()
        };
        s.register_sweep("fx", "fx.toml", &[NewRun::from_config(&c)])
            .unwrap();
    }
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    refresh(&app, &mut snap);
    app.on_key(ch('G'), &snap);
    app.on_key(key(KeyCode::Enter), &snap);
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("no data yet"), "{text}");
    // a newer schema is refused with both versions
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = format!("{:#}", Snapshot::open(&db).err().unwrap());
    assert!(e.contains("99") && e.contains("newer"), "{e}");
}

#[test]
fn the_tui_opens_an_empty_store_where_none_exists_and_can_launch_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let db = Locator::from(&path);
    let experiments = dir.path().join("experiments");
    std::fs::create_dir(&experiments).unwrap();
    let sweep = experiments.join("first.toml");
    std::fs::write(&sweep, "name = \"first\"\n[[runs]]\ntrain.epochs = 1\n").unwrap();
    let (mut snap, created) = qbheat_workbench::tui::open(&db).unwrap();
    assert!(created && path.is_file());
    let mut app = App::new(None, experiments);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(
        text.contains("0 runs") && text.contains("is empty"),
        "{text}"
    );
    // the Sweeps tab draws, and n offers the sweep files with their dry run
    app.on_key(ch('5'), &snap);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(text.contains("sweeps (n launches one)"), "{text}");
    app.on_key(ch('n'), &snap);
    assert!(matches!(app.mode, Mode::Launch(_)));
    let action = app.on_key(key(KeyCode::Enter), &snap).unwrap();
    assert_eq!(action, Action::Preview(sweep.clone()));
    qbheat_workbench::tui::perform(action, &mut app, &snap);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(
        text.contains("first.toml") && text.contains("sweep first: 1 runs, 0 already finished"),
        "{text}"
    );
    // a sweep registered by another process shows up on the next refresh
    Store::open(&db)
        .unwrap()
        .register_sweep(
            "first",
            "first.toml",
            &[NewRun::from_config(&RunConfig::default())],
        )
        .unwrap();
    app.on_key(key(KeyCode::Esc), &snap);
    app.on_key(ch('1'), &snap);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(text.contains("1 runs") && text.contains("queued"), "{text}");
    // once there, the store is opened, not created
    assert!(!qbheat_workbench::tui::open(&db).unwrap().1);
    // every other bad state is refused as before, and nothing is created or written
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE theirs (x INT)")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    let e = format!(
        "{:#}",
        qbheat_workbench::tui::open(&Locator::from(&foreign))
            .err()
            .unwrap()
    );
    assert!(e.contains("not a workbench database"), "{e}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
    let nowhere = dir.path().join("no-such-folder").join("x.db");
    assert!(qbheat_workbench::tui::open(&Locator::from(&nowhere)).is_err());
    assert!(!nowhere.exists());
}

#[test]
fn runs_tab_titles_params_by_the_shortest_tail_that_tells_them_apart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dims.db");
    let runs: Vec<NewRun> = [(64, 32, Position::Center), (128, 48, Position::Corner)]
        .into_iter()
        .map(|(decoder, predictor, position)| {
            let mut c = RunConfig::default();
            c.decoder.dim = decoder;
            c.predictor.dim = predictor;
            c.masking.position = position;
            NewRun::from_config(&c)
        })
        .collect();
    Store::open(&db)
        .unwrap()
        .register_sweep("dims", "dims.toml", &runs)
        .unwrap();
    let mut snap = Snapshot::open(&db).unwrap();
    let app = App::new(None, "experiments".into());
    let text = screen(&app, &mut snap, 160, 48);
    let header = text.lines().find(|l| l.contains(" id ")).unwrap();
    assert!(
        header.contains("decoder.dim")
            && header.contains("predictor.dim")
            && header.contains(" position "),
        "{header}"
    );
    assert!(!header.contains("masking.position"), "{header}");
}

/// A strip whose four panels are flat colours: red, green, blue and `shade` grey.
fn flat_strip(shade: u8) -> Vec<u8> {
    use image::{Rgb, RgbImage};
    let img = RgbImage::from_fn(4 * 16 + 6, 16, |x, _| match x / 18 {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([0, 255, 0]),
        2 => Rgb([0, 0, 255]),
        _ => Rgb([shade, shade, shade]),
    });
    qbheat_workbench::analysis::raster::png(&img).unwrap()
}

#[test]
fn pictures_tab_draws_strips_in_half_blocks_and_steps_through_epochs_and_images() {
    use qbheat_workbench::store::NewPicture;
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    let mut s = Store::open(&db).unwrap();
    for (r, id) in ids.iter().take(2).enumerate() {
        let pics: Vec<NewPicture> = (1..=2)
            .flat_map(|epoch| {
                (0..8).map(move |item| NewPicture {
                    kind: "reconstruction".into(),
                    epoch,
                    item,
                    caption: format!("image {item} · visible TL · run {r}"),
                    value: Some(0.5 / epoch as f64 + 0.01 * item as f64),
                    png: flat_strip(30 * item as u8),
                })
            })
            .collect();
        s.log_pictures(id, None, &pics).unwrap();
    }
    drop(s);
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.filter = ids[0].clone();
    app.on_key(ch('6'), &snap);
    assert_eq!(app.tab, Tab::Pictures);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(
        text.contains("epoch 2 (2/2)") && text.contains("image 1 of 8"),
        "{text}"
    );
    assert!(text.contains("masked error 0.2500"), "{text}");
    assert!(text.contains("e1 0.500  e2 0.250"), "{text}");
    // the first stored epoch's strip of the same image under it, for comparison
    assert!(
        text.contains("epoch 1 (the first stored), for comparison: masked error 0.5000"),
        "{text}"
    );
    let buf = qbheat_workbench::tui::render(&app, &snap, 100, 30).unwrap();
    let halves: Vec<_> = buf.content().iter().filter(|c| c.symbol() == "▀").collect();
    assert!(halves.len() > 100, "{} half blocks", halves.len());
    // the strip's panels keep their colours: red, green and blue cells are all there
    use ratatui::style::Color;
    for colour in [
        Color::Rgb(255, 0, 0),
        Color::Rgb(0, 255, 0),
        Color::Rgb(0, 0, 255),
    ] {
        assert!(
            halves.iter().any(|c| c.fg == colour && c.bg == colour),
            "{colour:?}"
        );
    }
    // ← goes to epoch 1, ] to the next image, [ back; stepping stops at the ends
    app.on_key(key(KeyCode::Left), &snap);
    app.on_key(key(KeyCode::Left), &snap);
    assert_eq!(app.picture_epoch, Some(1));
    app.on_key(ch(']'), &snap);
    let text = screen(&app, &mut snap, 100, 30);
    assert!(
        text.contains("epoch 1 (1/2)") && text.contains("image 2 of 8"),
        "{text}"
    );
    assert!(text.contains("masked error 0.5100"), "{text}");
    for _ in 0..10 {
        app.on_key(ch(']'), &snap);
    }
    assert_eq!(app.picture_image, 7);
    app.on_key(key(KeyCode::Right), &snap);
    assert_eq!(
        app.picture_epoch, None,
        "back on the newest epoch, following new ones"
    );
    // a run without pictures says why
    app.filter = ids[5].clone();
    let text = screen(&app, &mut snap, 100, 30);
    assert!(text.contains("no reconstructions stored"), "{text}");
    // Compare: the marked runs' strips of the same image, one above another
    app.filter.clear();
    app.tab = Tab::Compare;
    app.marked = ids[..2].to_vec();
    app.picture_image = 3;
    let text = screen(&app, &mut snap, 160, 48);
    assert!(
        text.contains("image 4 at each run's newest epoch"),
        "{text}"
    );
    for id in &ids[..2] {
        assert!(
            text.contains(&format!("{id} epoch 2  error 0.2800")),
            "{id}:\n{text}"
        );
    }
}

#[test]
fn t_tags_the_marked_runs_and_the_filter_takes_tag_and_note() {
    use qbheat_workbench::store::tags::Target;
    use qbheat_workbench::tui::app::Mode;
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    Store::open(&db)
        .unwrap()
        .add_note(Target::Run, &ids[4], "diverged at epoch 2")
        .unwrap();
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    refresh(&app, &mut snap);
    app.on_key(ch(' '), &snap);
    app.on_key(ch('j'), &snap);
    app.on_key(ch(' '), &snap);
    app.on_key(ch('t'), &snap);
    assert_eq!(app.mode, Mode::Tag(String::new()));
    for c in "keep".chars() {
        app.on_key(ch(c), &snap);
    }
    let action = app.on_key(key(KeyCode::Enter), &snap).unwrap();
    assert_eq!(action, Action::Tag(ids[..2].to_vec(), "keep".into()));
    qbheat_workbench::tui::perform(action, &mut app, &snap);
    assert_eq!(
        app.message.as_deref(),
        Some("tagged 2 runs with keep (2 newly)")
    );
    app.filter = "tag:keep".into();
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains(" tags ") && text.contains("keep"), "{text}");
    assert_eq!(app.visible(&snap).len(), 2);
    app.filter = "note:diverged".into();
    refresh(&app, &mut snap);
    let v: Vec<String> = app.visible(&snap).iter().map(|r| r.id.clone()).collect();
    assert_eq!(v, vec![ids[4].clone()]);
}

#[test]
fn reference_runs_are_dotted_on_the_run_and_compare_charts_and_r_hides_them() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    let rows: Vec<Metric> = (1..=3)
        .map(|e| Metric {
            key: "epoch/val_loss".into(),
            step: e,
            epoch: e,
            value: 0.9 - 0.1 * e as f64,
            wall: 0.0,
        })
        .collect();
    let provenance = r#"{"reference": {"file": "/logs/mae.txt"}}"#;
    Store::open(&db)
        .unwrap()
        .import_reference("ref-mae", provenance, &rows, false)
        .unwrap();
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    app.filter = ids[0].clone();
    app.tab = Tab::Run;
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("ref-mae (ref)"), "{text}");
    let refs = qbheat_workbench::tui::view::chart::reference_series(
        &snap,
        &app,
        "epoch/val_loss",
        80,
        Some(7.0),
    );
    assert_eq!(refs.len(), 1);
    assert!(refs[0].scatter, "dotted");
    // epochs 1..3 placed at steps 7, 14, 21 of the run's 7 steps per epoch
    let xs: Vec<f64> = refs[0].points.iter().map(|p| p.0).collect();
    assert_eq!(xs, vec![7.0, 14.0, 21.0]);
    app.on_key(ch('R'), &snap);
    assert!(!app.references);
    let text = screen(&app, &mut snap, 160, 48);
    assert!(!text.contains("ref-mae (ref)"), "{text}");
    app.on_key(ch('R'), &snap);
    app.filter.clear();
    app.tab = Tab::Compare;
    app.marked = ids[..2].to_vec();
    app.compare_metric = qbheat_workbench::tui::app::COMPARE_METRICS
        .iter()
        .position(|m| *m == "epoch/val_loss")
        .unwrap();
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("ref-mae (ref)"), "{text}");
}

#[test]
fn a_sweep_asked_for_on_a_fresh_path_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let err = qbheat_workbench::tui::run(
        &Locator::Sqlite(db.clone()),
        Some("ablation".into()),
        "experiments".into(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("no sweep named \"ablation\""),
        "{err:#}"
    );
    assert!(!db.exists(), "no empty store left behind");
}

#[test]
fn the_monitor_is_plotted_on_the_run_tab_and_a_collapsed_or_pruned_run_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = fixture(dir.path());
    {
        let mut s = Store::open(&db).unwrap();
        // run 0 healthy, run 1 collapses (effective rank 40 → 6), run 2 pruned at epoch 1
        for (id, eranks) in [(&ids[0], [30.0, 35.0, 38.0]), (&ids[1], [40.0, 20.0, 6.0])] {
            let mut rows = Vec::new();
            for (e, erank) in eranks.iter().enumerate() {
                let e = e as i64 + 1;
                for (key, value) in [
                    ("monitor/knn/top1", 0.5 + 0.1 * e as f64),
                    ("monitor/erank", *erank),
                    ("monitor/feature_std", 0.1),
                ] {
                    rows.push(Metric {
                        key: key.into(),
                        step: 7 * e,
                        epoch: e,
                        value,
                        wall: 0.0,
                    });
                }
            }
            s.log_metrics(id, &rows).unwrap();
        }
        s.set_status(
            &ids[2],
            Status::Pruned,
            Some("pruned at epoch 1: monitor/knn/top1 = 0.4000 (mean of 1 seed), rank 3 of 3 settings (the top 1 go on)"),
        )
        .unwrap();
    }
    let mut snap = Snapshot::open(&db).unwrap();
    let mut app = App::new(None, "experiments".into());
    let text = screen(&app, &mut snap, 160, 48);
    let line = |id: &str| text.lines().find(|l| l.contains(id)).unwrap().to_string();
    assert!(line(&ids[1]).contains("collapsed"), "{text}");
    assert!(!line(&ids[0]).contains("collapsed"), "{text}");
    assert!(line(&ids[2]).contains("pruned"), "{text}");
    assert!(
        line(&ids[0]).contains("80.0"),
        "the last kNN top-1 in %: {text}"
    );
    assert!(text.contains("kNN"), "{text}");
    app.filter = ids[1].clone();
    app.tab = Tab::Run;
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("monitor: kNN top-1"), "{text}");
    assert!(text.contains("monitor: effective rank"), "{text}");
    // the reason wraps in the config column
    assert!(text.contains("features collapsed:"), "{text}");
    assert!(text.contains("40.000 (epoch 1)"), "{text}");
    app.filter = ids[2].clone();
    let text = screen(&app, &mut snap, 160, 48);
    assert!(text.contains("why: pruned at epoch 1"), "{text}");
    assert!(
        !text.contains("monitor: kNN"),
        "no monitor rows, no monitor charts: {text}"
    );
}
