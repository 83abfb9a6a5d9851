//! The `workbench` binary: bad input gives a one-line error and a non-zero exit, never a panic.

use std::process::Command;

fn workbench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn config_error(contents: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, contents).unwrap();
    let p = path.to_str().unwrap().to_string();
    let out_dir = dir.path().join("out");
    let r = workbench(&["pretrain", &p, "--out", out_dir.to_str().unwrap()]);
    assert!(!out_dir.join("checkpoints").exists());
    (r.0, r.2, p)
}

fn assert_one_line_error(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_key_names_file_line_col() {
    let (code, err, path) = config_error("seed = 1\n[train]\nepochs = 1\nlearning_rate = 0.1\n");
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains(&format!("{path}:4:1:")), "{err}");
    assert!(err.contains("learning_rate"), "{err}");
}

#[test]
fn wrong_type_names_the_place() {
    let (code, err, path) = config_error("[train]\nbatch_size = \"big\"\n");
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains(&format!("{path}:2:")), "{err}");
}

#[test]
fn unknown_preset_lists_the_valid_ones() {
    let (code, err, _) = config_error("[model]\npreset = \"resnet50\"\n");
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    for p in ["mf-285m", "mf-1.0g", "mf-3.7g", "mf-tiny", "mf-micro"] {
        assert!(err.contains(p), "{err}");
    }
}

#[test]
fn syntax_error_and_missing_file() {
    let (code, err, path) = config_error("[train\nepochs = 1\n");
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains(&format!("{path}:1:")), "{err}");
    let (code, _, err) = workbench(&["pretrain", "/nonexistent/run.toml"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
}

#[test]
fn cuda_without_the_feature_is_an_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let (code, _, err) = workbench(&["bench", "--backend", "cuda", "--steps", "1"]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("--features cuda"), "{err}");
}

#[test]
fn sweep_devices_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |backend: &str| {
        let path = dir.path().join(format!("{backend}.toml"));
        std::fs::write(
            &path,
            format!(
                "name = \"gpus\"\n[base]\nbackend = \"{backend}\"\n[base.train]\nepochs = 1\n\
                 [grid]\n\"masking.position\" = [\"corner\", \"center\"]\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (cpu, cuda) = (sweep("cpu"), sweep("cuda"));
    let (code, _, err) = workbench(&["sweep", &cpu, "--devices", "0,1", "--db", db]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("uses backend cpu"), "{err}");
    let (code, _, err) = workbench(&["sweep", &cuda, "--devices", "1,1", "--db", db]);
    assert_eq!(code, 2);
    assert!(err.contains("GPU 1 twice"), "{err}");
    let (code, _, err) = workbench(&["sweep", &cuda, "--devices", "0,x", "--db", db]);
    assert_eq!(code, 2, "{err}");
    if std::path::Path::new("/dev/nvidia0").exists() {
        return;
    }
    let (code, _, err) = workbench(&["sweep", &cuda, "--devices", "0,1", "--db", db]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("no NVIDIA driver"), "{err}");
    assert!(!std::path::Path::new(db).exists(), "nothing is stored");
}

#[test]
fn bench_prints_the_summary_line() {
    let (code, out, err) = workbench(&[
        "bench", "--preset", "mf-micro", "--batch", "8", "--steps", "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().last().unwrap();
    assert!(line.starts_with("bench: img_per_s="), "{line}");
    // the timed steps ran with the workers polling (threads::HotPool), and ended
    for key in ["step_ms=", "peak_rss_mb=", "gflop_per_s=", "hot_pool=on"] {
        assert!(line.contains(key), "{line}");
    }
    // the default build has gemm's AVX-512 kernels, which gemm picks where the CPU has avx512f
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let gemm = if cpuinfo.contains(" avx512f") {
        "gemm_simd=avx512"
    } else if cpuinfo.contains(" fma") {
        "gemm_simd=avx2"
    } else {
        "gemm_simd=scalar"
    };
    assert!(line.contains(gemm), "{line}");
}

#[test]
fn bench_gemm_prints_a_line_per_product_shape() {
    let (code, out, err) = workbench(&["bench-gemm", "--reps", "1"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("bench-gemm: "))
        .collect();
    assert_eq!(lines.len(), 7, "{out}");
    for line in lines {
        for key in [
            "shape=",
            "serial_gflop_per_s=",
            "parallel_gflop_per_s=",
            "gemm_simd=",
        ] {
            assert!(line.contains(key), "{line}");
        }
        let rate: f64 = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("parallel_gflop_per_s="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{line}");
    }
    let (code, _, err) = workbench(&["bench-gemm", "--reps", "0"]);
    assert_eq!(code, 1, "{err}");
    assert_one_line_error(&err);
}

#[test]
fn model_prints_parameters() {
    let (code, out, _) = workbench(&["model", "--preset", "mf-285m"]);
    assert_eq!(code, 0);
    assert!(out.contains("912 features"), "{out}");
    assert!(out.contains("parameters"), "{out}");
}

/// A reader that stops early (`workbench model | head -1`) ends the output quietly: no panic
/// message, no error line.
#[test]
fn output_into_a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["model", "--preset", "mf-tiny"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn truncated_idx_names_the_file_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = vec![0u8, 0, 8, 3];
    for d in [10u32, 28, 28] {
        img.extend(d.to_be_bytes());
    }
    img.extend(vec![7u8; 28 * 28 * 3]); // 3 of the 10 images
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &img).unwrap();
    let mut lbl = vec![0u8, 0, 8, 1];
    lbl.extend(10u32.to_be_bytes());
    lbl.extend([1u8; 10]);
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &lbl).unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\nsource = \"idx\"\npath = \"{}\"\nchannels = 1\n[model]\npreset = \"mf-micro\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let (code, _, err) = workbench(&[
        "pretrain",
        cfg.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(
        err.contains("train-images-idx3-ubyte: truncated at byte 2368"),
        "{err}"
    );
}

#[test]
fn missing_data_path_is_a_config_error() {
    let (code, err, _) = config_error("[data]\nsource = \"idx\"\n");
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("data.path"), "{err}");
}

#[test]
fn ctrl_c_checkpoints_a_pretraining_and_resume_finishes_it() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        "[data]\ntrain_size = 256\nval_size = 32\n[model]\npreset = \"mf-micro\"\n\
         [predictor]\ndim = 32\n[decoder]\ndim = 32\ndepth = 1\nheads = 2\n\
         [train]\nepochs = 40\nbatch_size = 32\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args([
            "pretrain",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("epoch   1"), "{first}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success());
    assert!(
        rest.iter().any(|l| l.starts_with("stopped at step")),
        "{rest:?}"
    );
    let (code, stdout, err) = workbench(&[
        "pretrain",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "without --resume the folder is refused");
    assert!(err.contains("--resume"), "{err}");
    assert!(stdout.is_empty());
}

#[test]
fn bench_arguments_are_checked_before_any_work() {
    let (code, out, err) = workbench(&["bench", "--steps", "0"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(err.contains("--steps") && !out.contains("NaN"), "{err}");
    if !cfg!(feature = "cuda") {
        let t = std::time::Instant::now();
        let (code, _, err) = workbench(&["bench", "--backend", "cuda", "--breakdown"]);
        assert_eq!(code, 2);
        assert!(err.contains("--features cuda"), "{err}");
        assert!(t.elapsed().as_secs() < 5, "refused before benchmarking");
    }
    let (code, _, err) = workbench(&["bench-spectrum", "--dim", "0"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    let (code, _, err) = workbench(&["bench", "--batch", "100000000000"]);
    assert_ne!(code, 0);
    assert_one_line_error(&err);
    assert!(err.contains("batch_size"), "{err}");
}

/// A store with one registered run that never started.
fn store_with_a_queued_run(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let db = dir.join("q.db");
    let mut s = qbheat_workbench::store::Store::open(&db).unwrap();
    let run = qbheat_workbench::store::NewRun::from_config(&Default::default());
    s.register_sweep("never", "never.toml", std::slice::from_ref(&run))
        .unwrap();
    (db, run.id)
}

/// `workbench probe` refuses a run whose worker is alive (running, fresh heartbeat) with one
/// line naming it, before loading anything, and leaves the run as it was.
#[test]
fn a_live_running_run_is_not_probed() {
    use qbheat_workbench::store::{Metric, Status, Store};
    let dir = tempfile::tempdir().unwrap();
    let (db, id) = store_with_a_queued_run(dir.path());
    let mut s = Store::open(&db).unwrap();
    s.set_status(&id, Status::Running, None).unwrap();
    // a metric write stamps the heartbeat, as a live worker's do
    let beat = Metric {
        key: "train/loss".into(),
        step: 1,
        epoch: 0,
        value: 1.0,
        wall: 0.0,
    };
    s.log_metrics(&id, &[beat]).unwrap();
    let before = s.run(&id).unwrap();
    drop(s);
    let (code, _, err) = workbench(&["probe", &id, "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(err.contains(&id) && err.contains("is running"), "{err}");
    let after = Store::open_read_only(&db).unwrap().run(&id).unwrap();
    assert_eq!(after, before, "the refused probe wrote nothing");
    // once it is no longer running, the same command gets past the refusal
    Store::open(&db)
        .unwrap()
        .set_status(&id, Status::Stopped, None)
        .unwrap();
    let (code, _, err) = workbench(&["probe", &id, "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no checkpoint"), "{err}");
}

#[test]
fn runs_without_outputs_are_messages_not_reads_of_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id) = store_with_a_queued_run(dir.path());
    let db = db.to_str().unwrap();
    let (code, _, err) = workbench(&["probe", &id, "--db", db]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(
        err.contains("no checkpoint") && err.contains("never started"),
        "{err}"
    );
    let (code, out, err) = workbench(&["spectrum", &id, "--db", db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no spectrum yet"), "{out}");
    // with --format json the output is JSON: the empty list, the words on stderr
    let (code, out, err) = workbench(&["spectrum", &id, "--db", db, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v, serde_json::json!([]));
    assert!(err.contains("no spectrum yet"), "{err}");
    let (code, _, err) = workbench(&["runs", "--sweep", "nope", "--db", db]);
    assert_eq!(code, 1);
    assert!(err.contains("sweeps: never"), "{err}");
    // a wildcard is not a prefix
    let (code, _, err) = workbench(&["show", "%", "--db", db]);
    assert_eq!(code, 1);
    assert!(err.contains("no run"), "{err}");
}

#[test]
fn a_store_on_a_read_only_file_system_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id) = store_with_a_queued_run(dir.path());
    // a private mount namespace where the folder is a read-only bind mount (needs
    // unprivileged user namespaces; says so and passes where they are not allowed)
    let probe = Command::new("unshare").args(["-rm", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("unshare -rm is not permitted here: skipping the read-only mount test");
        return;
    }
    let d = dir.path().display();
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} && \
         ! touch {d}/probe && {} runs --db {} --format csv",
        env!("CARGO_BIN_EXE_workbench"),
        db.display()
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&id), "{stdout}");
}

#[test]
fn sweep_names_cannot_escape_the_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"../../x\"\n[grid]\n\"train.epochs\" = [1]\n",
    )
    .unwrap();
    let (code, _, err) = workbench(&["sweep", file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(err.contains("s.toml:1:"), "{err}");
}

#[test]
fn non_utf8_configs_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"seed = 1\n[train]\nepochs = \xff\n").unwrap();
    let (code, _, err) = workbench(&["pretrain", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
    assert!(
        err.contains("bad.toml:3:10:") && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn a_database_with_a_negative_schema_version_is_one_line_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = store_with_a_queued_run(dir.path());
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", -1)
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let sweep = dir.path().join("s.toml");
    std::fs::write(&sweep, "name = \"s\"\n[[runs]]\ntrain.epochs = 1\n").unwrap();
    let db_s = db.to_str().unwrap();
    for args in [
        vec!["runs", "--db", db_s],
        vec!["runs", "--db", db_s, "--format", "json"],
        vec!["sweep", sweep.to_str().unwrap(), "--db", db_s],
        vec!["tui", "--db", db_s],
        vec!["report", "--db", db_s],
    ] {
        let (code, _, err) = workbench(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_one_line_error(&err);
        assert!(
            err.contains("not a workbench database (unknown schema version -1)"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing written");
}

#[test]
fn a_worker_refuses_a_run_it_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id) = store_with_a_queued_run(dir.path());
    let out = dir.path().join("out");
    let db_s = db.to_str().unwrap();
    let (code, _, err) = workbench(&[
        "worker",
        "--db",
        db_s,
        "--run",
        &id,
        "--attempt",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(
        err.contains("refusing to train") && err.contains("queued, attempt 0"),
        "{err}"
    );
    let s = qbheat_workbench::store::Store::open_read_only(&db).unwrap();
    let row = s.run(&id).unwrap();
    assert_eq!(row.status, qbheat_workbench::store::Status::Queued);
    assert_eq!(row.attempts, 0);
    assert!(row.pid.is_none() && s.metrics(&id).unwrap().is_empty());
    assert!(!out.join("checkpoints").exists(), "nothing trained");
}

#[test]
fn files_that_are_not_workbench_stores_are_refused_and_left_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (good, _) = store_with_a_queued_run(dir.path());
    let whole = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "random.db",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "not a database",
        ),
        ("text.db", b"name,value\na,1\n".to_vec(), "not a database"),
        ("half.db", whole[..whole.len() / 2].to_vec(), "malformed"),
    ];
    let mut files: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for (name, bytes, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        files.push((path, expect));
    }
    // another program's SQLite database (schema version 0, its own tables)
    let other = dir.path().join("other.sqlite");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me');")
        .unwrap();
    drop(c);
    files.push((other, "not a workbench database (it holds 1 tables"));
    for (path, expect) in &files {
        let before = std::fs::read(path).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec!["runs", "--db", p],
            vec!["export", "--db", p, "--format", "json"],
        ] {
            let (code, out, err) = workbench(&args);
            assert_eq!(code, 1, "{args:?}: {out}");
            assert_one_line_error(&err);
            assert!(err.contains(expect), "{args:?}: {err}");
        }
        assert_eq!(&std::fs::read(path).unwrap(), &before, "{}", path.display());
    }
}
