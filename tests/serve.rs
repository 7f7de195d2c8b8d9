//! `lenet5 serve` over HTTP on an ephemeral port: the page, both API calls, every bad input (and a good
//! request after each), concurrent requests, agreement with `lenet5 predict --json`, Ctrl-C; and the page in
//! a real browser (headless Chromium), which loads the sample digit and shows its prediction.
mod common;
use common::*;
use lenet5::serve::http::{MAX_BODY, PANIC_VAR};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A served project: three runs trained for an epoch on synthetic digits (ReLU, sigmoid, the 1998 net).
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = tiny_project(name, 300, 50, "");
        for (run, sets) in [
            ("relu", &[][..]),
            ("sigmoid", &["--set", "model.activation=sigmoid"][..]),
            ("old", &["--set", "model.variant=lenet5_1998"][..]),
        ] {
            let mut args = vec!["train", "tiny.yaml", "--epochs", "1", "--run-dir"];
            let path = format!("runs/{run}");
            args.push(&path);
            args.extend(sets);
            ok(lenet5(&dir, &args));
        }
        let (child, port) = spawn_serve(&dir, &["runs/relu", "runs/sigmoid", "runs/old"]);
        Server { child, port, dir }
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        request(self.port, method, path, body)
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        json(self.port, method, path, body)
    }
}

/// `lenet5 serve ARGS --port 0` in `dir`, and the port it printed in its first line ("serving … at
/// http://127.0.0.1:PORT/").
fn spawn_serve(dir: &Path, args: &[&str]) -> (Child, u16) {
    let (child, port, line) = spawn_serve_with(dir, args, &[]);
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    (child, port)
}

/// [`spawn_serve`] with environment variables `env`, any `--host`; also the line it printed.
fn spawn_serve_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, u16, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    (child, port, line)
}

/// The `run` names of an `/api/runs` answer, in order.
fn run_names(runs: &serde_json::Value) -> Vec<&str> {
    runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap())
        .collect()
}

/// One HTTP/1.1 request as the page sends it (its Host, and a POST's body as `image/png`): (status, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(port, &head, body)
}

/// One POST whose body is sent chunked (no Content-Length, so the server learns its size only by reading
/// it): (status, body).
fn post_chunked(port: u16, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: image/png\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut chunked = vec![];
    for chunk in body.chunks(1 << 16) {
        chunked.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend(chunk);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let (status, answer) = exchange(port, &head, &chunked);
    (status, serde_json::from_slice(&answer).unwrap())
}

/// Sends `head` and `body` on a new connection and reads the answer to its end: (status, body).
fn exchange(port: u16, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body, and close.
    let _ = stream.write_all(body);
    let mut raw = vec![];
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

fn json(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, bytes) = request(port, method, path, body);
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {:.300}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/7-blue-on-paper.png"))
        .unwrap()
}

/// A PNG that declares 50,000 × 50,000 RGBA pixels (10 GB decoded) in a few bytes: a decompression bomb.
fn bomb_png() -> Vec<u8> {
    declared_png(50_000, 50_000, 8, 6)
}

#[test]
fn the_page_the_api_bad_input_concurrency_and_ctrl_c() {
    let mut server = Server::start("serve_http");

    let (status, page) = server.request("GET", "/", b"");
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"pad\"") && page.contains("/api/predict"),
        "the page"
    );
    let (status, png) = server.request("GET", "/sample.png", b"");
    assert_eq!((status, &png[..4]), (200, &b"\x89PNG"[..]));

    let (status, runs) = server.json("GET", "/api/runs", b"");
    assert_eq!(status, 200);
    let names = run_names(&runs);
    assert_eq!(names, ["relu", "sigmoid", "old"], "in the order given");
    assert_eq!(runs["runs"][1]["activation"], "sigmoid");
    assert_eq!(runs["runs"][2]["variant"], "lenet5_1998");
    assert!(runs["runs"][0]["test_accuracy"].as_f64().unwrap() > 0.0);
    assert_eq!(
        runs["runs"][0]["filters"]["shape"],
        serde_json::json!([6, 1, 5, 5])
    );

    let (status, answer) = server.json("POST", "/api/predict", &sample());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["input"]["shape"], serde_json::json!([28, 28]));
    let lenet5_layers = [
        ("C1", vec![6, 28, 28]),
        ("S2", vec![6, 14, 14]),
        ("C3", vec![16, 10, 10]),
        ("S4", vec![16, 5, 5]),
        ("F5", vec![120]),
        ("F6", vec![84]),
        ("output", vec![10]),
    ];
    for r in 0..2 {
        let layers = answer["runs"][r]["layers"].as_array().unwrap();
        let got: Vec<(&str, Vec<i64>)> = layers
            .iter()
            .map(|l| {
                let shape: Vec<i64> = l["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                assert_eq!(
                    l["values"].as_array().unwrap().len() as i64,
                    shape.iter().product::<i64>()
                );
                (l["name"].as_str().unwrap(), shape)
            })
            .collect();
        let want: Vec<(&str, Vec<i64>)> =
            lenet5_layers.iter().map(|(n, s)| (*n, s.clone())).collect();
        assert_eq!(got, want, "run {r}");
        // Which pixels the answer rests on: integrated gradients, complete within 1%.
        let a = &answer["runs"][r]["attribution"];
        assert_eq!(a["values"].as_array().unwrap().len(), 28 * 28);
        let (sum, delta) = (a["sum"].as_f64().unwrap(), a["delta"].as_f64().unwrap());
        assert!((sum - delta).abs() <= 0.01 * delta.abs(), "run {r}: {a}");
    }
    let old: Vec<&str> = answer["runs"][2]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        old,
        ["input", "C1", "S2", "C3", "S4", "C5", "F6", "output"],
        "the 1998 net by its own names"
    );

    // The same answer as `lenet5 predict --json` on the same image.
    let image = server.dir.join("sample.png");
    std::fs::write(&image, sample()).unwrap();
    for (r, run) in ["runs/relu", "runs/sigmoid", "runs/old"].iter().enumerate() {
        let json = ok(lenet5(
            &server.dir,
            &["predict", run, image.to_str().unwrap(), "--json"],
        ));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let p = &v["predictions"][0];
        assert_eq!(answer["runs"][r]["prediction"], p["digit"], "{run}");
        let served: Vec<f64> = answer["runs"][r]["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let predicted: Vec<f64> = p["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(
            served, predicted,
            "{run}: the same code path, the same numbers"
        );
        assert!((served.iter().sum::<f64>() - 1.0).abs() < 1e-4);
    }

    // Bad input: a clear 4xx JSON error, and the next good request still works.
    let mut truncated = sample();
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/api/predict", vec![], 400, "empty"),
        (
            "POST",
            "/api/predict",
            b"hello, not an image".to_vec(),
            400,
            "cannot read image",
        ),
        ("POST", "/api/predict", truncated, 400, "cannot read image"),
        ("POST", "/api/predict", bomb_png(), 400, "megapixels"),
        (
            "POST",
            "/api/predict",
            vec![0u8; 5 << 20],
            413,
            "larger than",
        ),
        // 4 MiB is the limit itself: read, and refused for what it is.
        (
            "POST",
            "/api/predict",
            vec![0u8; 4 << 20],
            400,
            "cannot read image",
        ),
        ("GET", "/api/nothing", vec![], 404, "no such page"),
        ("GET", "/api/predict", vec![], 405, "not allowed"),
    ];
    for (method, path, body, want, says) in cases {
        let (status, v) = server.json(method, path, &body);
        assert_eq!(status, want, "{method} {path}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(says),
            "{method} {path}: {v}"
        );
        let (status, again) = server.json("POST", "/api/predict", &sample());
        assert_eq!(status, 200);
        assert_eq!(
            again["runs"][0]["prediction"],
            answer["runs"][0]["prediction"]
        );
    }

    // Sent chunked, the size is known only after reading: one byte over the limit is refused, the limit
    // itself is read.
    let (status, v) = post_chunked(server.port, "/api/predict", &vec![0u8; (4 << 20) + 1]);
    assert_eq!(status, 413, "{v}");
    let (status, v) = post_chunked(server.port, "/api/predict", &vec![0u8; 4 << 20]);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cannot read image"));

    // Eight requests at once: all answered, all the same.
    let port = server.port;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let (status, v) = json(port, "POST", "/api/predict", &sample());
                (status, v["runs"][0]["prediction"].clone())
            })
        })
        .collect();
    for t in threads {
        let (status, prediction) = t.join().unwrap();
        assert_eq!(
            (status, &prediction),
            (200, &answer["runs"][0]["prediction"])
        );
    }

    // Ctrl-C stops it cleanly.
    let (exit, err) = stop(&mut server.child, "INT", Duration::from_secs(1));
    assert!(exit.success() && err.contains("stopped"), "{exit:?}: {err}");
}

/// Sends `signal` (`INT`, `TERM`) to `child` and waits for it to exit, at most `within`: its exit status
/// and everything it wrote to stderr.
fn stop(child: &mut Child, signal: &str, within: Duration) -> (std::process::ExitStatus, String) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if sent.elapsed() > within {
            let _ = child.kill();
            panic!("still serving {within:?} after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (exit, err)
}

#[test]
fn serve_without_runs_or_with_a_bad_one_says_so() {
    let dir = scratch("serve_errors");
    let out = lenet5(&dir, &["serve", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no runs in runs"), "{}", stderr(&out));
    let out = lenet5(&dir, &["serve", "nowhere", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}

/// Headless Chromium's path, installing Debian's package as root when it is missing; `None` (and the test
/// counted as skipped, or failed under CI) where it cannot be had.
fn chromium(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if !path.exists() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| stdout(&o).trim() == "0");
        if !root {
            skip(
                test,
                "needs Debian's chromium (apt-get install chromium, as root)",
            );
            return None;
        }
        let quiet = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let installed = quiet(&["update", "-qq"]) && quiet(&["install", "-y", "-qq", "chromium"]);
        if !installed || !path.exists() {
            skip(test, "apt-get install chromium failed");
            return None;
        }
    }
    Some(path)
}

#[test]
fn a_real_browser_shows_the_sample_digit_s_prediction() {
    let name = "a_real_browser_shows_the_sample_digit_s_prediction";
    let Some(chromium) = chromium(name) else {
        return;
    };
    let server = Server::start("serve_browser");
    let (_, answer) = server.json("POST", "/api/predict", &sample());
    let profile = server.dir.join("chromium-profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("http://127.0.0.1:{}/", server.port),
        ])
        .output()
        .unwrap();
    let dom = stdout(&out);
    let digit = answer["runs"][0]["prediction"].as_i64().unwrap();
    assert!(
        dom.contains(&format!("id=\"prediction\">{digit}<")),
        "the page shows the first run's prediction {digit}; DOM:\n{:.3000}\nstderr:\n{:.2000}",
        dom,
        stderr(&out)
    );
    // Every layer of every run is drawn: 3 runs × (6 + 6 + 16 + 16 + 3) maps and strips, at least; and
    // each run's attribution over the digit.
    assert!(
        dom.matches("class=\"map\"").count() >= 3 * 47,
        "layer maps drawn"
    );
    assert_eq!(
        dom.matches("class=\"map attribution\"").count(),
        3,
        "one attribution per run"
    );
}

#[test]
fn a_sweep_directory_serves_one_run_per_group() {
    let dir = tiny_project("serve_sweep", 200, 50, "");
    std::fs::write(
        dir.join("sweep.yaml"),
        "base: tiny.yaml\nseeds: 2\nset: {trainer.epochs: 1}\nvariants:\n  - {name: relu}\n  - {name: tanh, set: {model.activation: tanh}}\n",
    )
    .unwrap();
    ok(lenet5(
        &dir,
        &["sweep", "sweep.yaml", "--out", "study", "--jobs", "2"],
    ));
    let (mut child, port) = spawn_serve(&dir, &["study"]);
    let (status, runs) = json(port, "GET", "/api/runs", b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let names = run_names(&runs);
    assert_eq!(
        names,
        ["relu-seed1", "tanh-seed1"],
        "the first finished run of each group, in sweep order"
    );
    assert_eq!(runs["runs"][1]["activation"], "tanh");

    // Runs of one name are told apart on the page.
    let again = "study/runs/relu-seed1";
    let (mut child, port) = spawn_serve(&dir, &["study", again, again]);
    let (status, runs) = json(port, "GET", "/api/runs", b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(
        run_names(&runs),
        [
            "relu-seed1",
            "tanh-seed1",
            "relu-seed1 (2)",
            "relu-seed1 (3)"
        ]
    );
}

#[test]
fn a_run_s_mistakes_grid_is_served_beside_it() {
    let dir = tiny_project("serve_mistakes", 200, 50, "");
    for run in ["runs/tested", "runs/untested"] {
        ok(lenet5(
            &dir,
            &["train", "tiny.yaml", "--epochs", "1", "--run-dir", run],
        ));
    }
    ok(lenet5(&dir, &["test", "runs/tested", "--mistakes", "4"]));
    let png = std::fs::read(dir.join("runs/tested/mistakes/mistakes.png")).unwrap();
    let (mut child, port) = spawn_serve(&dir, &["runs/tested", "runs/untested"]);
    let (status, runs) = json(port, "GET", "/api/runs", b"");
    let (grid, other, missing) = (
        request(port, "GET", "/api/runs/0/mistakes.png", b""),
        request(port, "GET", "/api/runs/1/mistakes.png", b""),
        request(port, "GET", "/api/runs/9/mistakes.png", b""),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(runs["runs"][0]["mistakes"], "/api/runs/0/mistakes.png");
    assert_eq!(runs["runs"][1]["mistakes"], serde_json::Value::Null);
    assert_eq!(grid, (200, png), "the run's own grid, byte for byte");
    for (status, body) in [other, missing] {
        assert_eq!(status, 404);
        assert!(refusal(&body).contains("no such page"), "{body:?}");
    }
}

// ---- What no client can do: stop it, stall it, exhaust it, or use it from another site (#28, items 1-5).
// Each test runs its own server over one run trained once, with a 1-second timeout where time matters.

/// A project with one run (`runs/relu`), trained once for all the tests below that only need a model.
fn one_run() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tiny_project("serve_one_run", 200, 50, "");
        let args: Vec<&str> = "train tiny.yaml --epochs 1 --run-dir runs/relu"
            .split(' ')
            .collect();
        ok(lenet5(&dir, &args));
        dir
    })
}

impl Server {
    /// `lenet5 serve runs/relu ARGS` over [`one_run`], with environment variables `env`.
    fn over_one_run(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = one_run().to_path_buf();
        let all: Vec<&str> = ["runs/relu"].iter().chain(args).copied().collect();
        let (child, port, _) = spawn_serve_with(&dir, &all, env);
        Server { child, port, dir }
    }
}

/// A connection that has sent `head` (a write the server cut short is fine), reading with a timeout.
fn open(port: u16, head: &str, read_timeout: Duration) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    let _ = stream.write_all(head.as_bytes());
    stream
}

/// What the server answered on `stream` before closing it or the read timing out: (status, body), or
/// `None` when it closed, reset or kept silent without a complete answer.
fn answer(stream: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut raw = vec![];
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, raw[split + 4..].to_vec()))
}

/// The `error` of a JSON refusal; panics when the body is not one.
fn refusal(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
    v["error"].as_str().expect("an error message").to_string()
}

/// A POST to /api/predict with an image's content type and `framing` (a length or chunked), no body yet.
fn post_head(port: u16, framing: &str) -> String {
    format!(
        "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n{framing}\r\n\r\n"
    )
}

#[test]
fn a_body_declared_huge_is_refused_unread_and_the_server_goes_on() {
    let mut server = Server::over_one_run(&[], &[]);
    let head = post_head(server.port, "Content-Length: 99999999999");
    for _ in 0..3 {
        let mut stream = open(server.port, &head, Duration::from_secs(10));
        let (status, body) = answer(&mut stream).expect("an answer");
        assert_eq!(status, 413);
        assert!(refusal(&body).contains("larger than 4 MiB"));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.child.try_wait().unwrap(),
        None,
        "the server ended after refusing a declared length"
    );
    let (status, _) = server.json("GET", "/api/runs", b"");
    assert_eq!(status, 200);
}

#[test]
fn idle_and_slow_clients_stall_nobody_are_dropped_and_do_not_hold_a_signal() {
    let mut server = Server::over_one_run(&["--timeout", "1"], &[]);
    let port = server.port;
    let wait = Duration::from_secs(5);
    let opened = Instant::now();
    // Complete headers announcing a body that never comes (by length and chunked), and headers cut short.
    let mut idle: Vec<(TcpStream, bool)> = vec![];
    for framing in ["Content-Length: 100000"; 8]
        .iter()
        .chain(&["Transfer-Encoding: chunked"; 4])
    {
        idle.push((open(port, &post_head(port, framing), wait), true));
    }
    for _ in 0..4 {
        idle.push((
            open(port, "GET /api/runs HTTP/1.1\r\nHost: 127", wait),
            false,
        ));
    }
    // Others are answered meanwhile, at once.
    let asked = Instant::now();
    let get =
        format!("GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let got = answer(&mut open(port, &get, wait));
    assert_eq!(
        got.map(|(status, _)| status),
        Some(200),
        "with 16 idle clients"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    // After the timeout, a body that never came gets its 408, and so do headers that never ended.
    for (mut stream, had_headers) in idle {
        let (status, body) = answer(&mut stream).expect("an answer");
        assert_eq!(status, 408);
        let says = match had_headers {
            true => "request body did not arrive within 1 s",
            false => "headers did not arrive within 1 s",
        };
        assert!(refusal(&body).contains(says), "{}", refusal(&body));
    }
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "{:?}",
        opened.elapsed()
    );

    // One request a connection: a client that asks for 1000 answers at once (46 MB) gets at most the first
    // (closing on the unread requests may reset the connection before the client reads it), at once.
    let asks = format!("GET /sample.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").repeat(1000);
    let asked = Instant::now();
    let mut greedy = open(port, &asks, Duration::from_secs(10));
    let mut raw = vec![];
    let _ = greedy.read_to_end(&mut raw);
    let answered = raw.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert!(answered <= 1, "{answered} answers of 1000");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );

    // Clients holding connections do not hold the server: SIGTERM stops it within a second.
    let _stuck: Vec<TcpStream> = (0..8)
        .map(|_| open(port, &post_head(port, "Content-Length: 100000"), wait))
        .chain([open(port, &asks, wait)])
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (exit, err) = stop(&mut server.child, "TERM", Duration::from_secs(1));
    assert!(exit.success() && err.contains("stopped"), "{exit:?}: {err}");
}

#[test]
fn a_request_that_panics_gets_a_500_and_the_server_goes_on() {
    let trigger = "panic in this request, please";
    let server = Server::over_one_run(&[], &[(PANIC_VAR, trigger)]);
    // More than any pool of workers the server could have.
    for _ in 0..12 {
        let (status, v) = server.json("POST", "/api/predict", trigger.as_bytes());
        assert_eq!(status, 500, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("internal error"),
            "{v}"
        );
    }
    let (status, v) = server.json("POST", "/api/predict", &sample());
    assert_eq!(status, 200, "{v}");
    let (status, _) = server.json("GET", "/api/runs", b"");
    assert_eq!(status, 200);
}

/// The server's peak resident memory so far (VmHWM), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// The largest image decoded (4096 × 4096, RGB) with a dark ring on light paper, as PNG.
fn largest_accepted_png() -> Vec<u8> {
    let side = 4096u32;
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        let d = (x as f32 - 2048.0).hypot(y as f32 - 2048.0);
        if (d - 1200.0).abs() < 150.0 {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([235, 235, 235])
        }
    });
    let mut png = vec![];
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert!(png.len() < MAX_BODY, "{} bytes", png.len());
    png
}

#[test]
fn a_huge_image_is_refused_before_decoding_and_parallel_decodes_stay_small() {
    let server = Server::over_one_run(&[], &[]);
    // 16000 × 16000 at 1 bit: a few bytes sent, 256 MB as grey bytes, 4 GB as the float image.
    let (status, v) = server.json("POST", "/api/predict", &declared_png(16_000, 16_000, 1, 0));
    assert_eq!(status, 400, "{v}");
    let says = v["error"].as_str().unwrap();
    assert!(
        says.contains("16000×16000") && says.contains("16 megapixels"),
        "{says}"
    );

    // Eight of the largest accepted images at once: all classified, the peak memory a few hundred MB over
    // what one small request leaves.
    let png = largest_accepted_png();
    let (status, _) = server.json("POST", "/api/predict", &sample());
    assert_eq!(status, 200);
    let before = peak_memory(server.child.id());
    let port = server.port;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let png = png.clone();
            std::thread::spawn(move || json(port, "POST", "/api/predict", &png))
        })
        .collect();
    for t in threads {
        let (status, v) = t.join().unwrap();
        assert_eq!(status, 200, "{v}");
        assert!(
            v["runs"][0]["prediction"].as_u64().is_some_and(|d| d < 10),
            "{v:.200}"
        );
    }
    let grown = peak_memory(server.child.id()) - before;
    eprintln!(
        "eight 4096×4096 images at once: peak memory +{} MiB",
        grown >> 20
    );
    assert!(grown < 400 << 20, "peak memory grew by {} MiB", grown >> 20);
}

#[test]
fn only_this_server_s_own_names_and_pages_are_answered() {
    let server = Server::over_one_run(&[], &[]);
    let port = server.port;
    let get = |headers: &str| {
        let head = format!("GET /api/runs HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
        answer(&mut open(port, &head, Duration::from_secs(10))).expect("an answer")
    };
    let ours = format!("Host: 127.0.0.1:{port}\r\n");
    for host in [
        ours.clone(),
        format!("Host: localhost:{port}\r\n"),
        format!("Host: [::1]:{port}\r\n"),
    ] {
        assert_eq!(get(&host).0, 200, "{host}");
    }
    let cases = [
        // DNS rebinding: another name resolving to 127.0.0.1.
        (format!("Host: attacker.example:{port}\r\n"), 421, "not"),
        (
            format!("Host: 127.0.0.1:{}\r\n", port.wrapping_add(1)),
            421,
            "not",
        ),
        ("Host: localhost\r\n".into(), 421, "not"),
        (String::new(), 400, "Host header"),
        (
            format!("{ours}Origin: http://attacker.example\r\n"),
            403,
            "another site",
        ),
        (format!("{ours}Origin: null\r\n"), 403, "another site"),
        (
            format!("{ours}Origin: https://127.0.0.1:{port}\r\n"),
            403,
            "another site",
        ),
    ];
    for (headers, want, says) in cases {
        let (status, body) = get(&headers);
        assert_eq!(status, want, "{headers}");
        assert!(
            refusal(&body).contains(says),
            "{headers}: {}",
            refusal(&body)
        );
    }
    assert_eq!(
        get(&format!("{ours}Origin: http://127.0.0.1:{port}\r\n")).0,
        200
    );

    // A browser sends these content types across sites without asking first: never processed, though the
    // body is an image that would be classified.
    let png = sample();
    let post = |content_type: &str| {
        let head = format!(
            "POST /api/predict HTTP/1.1\r\n{ours}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n",
            png.len()
        );
        let mut stream = open(port, &head, Duration::from_secs(30));
        stream.write_all(&png).unwrap();
        answer(&mut stream).expect("an answer")
    };
    for refused in [
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "",
    ] {
        let (status, body) = post(refused);
        assert_eq!(status, 415, "{refused}");
        assert!(
            refusal(&body).contains("Content-Type: image/png"),
            "{refused}"
        );
    }
    for accepted in [
        "Content-Type: image/png\r\n",
        "Content-Type: application/octet-stream\r\n",
    ] {
        assert_eq!(post(accepted).0, 200, "{accepted}");
    }

    // Heads the HTTP library would refuse with an empty body get lenet5's JSON: 1 MiB of headers, 101
    // header lines, not HTTP, a target that is not a URI, a Content-Length that is not one number. The
    // server goes on.
    let raw = |head: String| {
        let (status, body) =
            answer(&mut open(port, &head, Duration::from_secs(10))).expect("an answer");
        (status, refusal(&body))
    };
    let huge = format!(
        "GET /api/runs HTTP/1.1\r\n{ours}X-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many = format!(
        "GET /api/runs HTTP/1.1\r\n{ours}{}\r\n",
        "X-A: 1\r\n".repeat(101)
    );
    let cases = [
        (huge, 431, "over 32 KiB"),
        (many, 431, "more than 100 header lines"),
        ("HELLO THERE\r\n\r\n".to_string(), 400, "malformed request"),
        (
            format!("GET /a b HTTP/1.1\r\n{ours}\r\n"),
            400,
            "malformed request:",
        ),
        (
            format!("GET /a<b HTTP/1.1\r\n{ours}\r\n"),
            400,
            "malformed request target",
        ),
        (
            format!("POST /api/predict HTTP/1.1\r\n{ours}Content-Length: +5\r\n\r\n"),
            400,
            "Content-Length",
        ),
        (
            format!("POST /api/predict HTTP/1.0\r\n{ours}Transfer-Encoding: chunked\r\n\r\n"),
            400,
            "Transfer-Encoding",
        ),
        (
            format!("POST /api/predict HTTP/1.1\r\n{ours}Transfer-Encoding: gzip\r\n\r\n"),
            400,
            "Transfer-Encoding",
        ),
        (
            format!(
                "POST /api/predict HTTP/1.1\r\n{ours}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"
            ),
            400,
            "Content-Length",
        ),
        (
            format!("POST /api/predict HTTP/1.1\r\n{ours}Content-Length: -1\r\n\r\n"),
            400,
            "Content-Length",
        ),
    ];
    for (head, status, says) in cases {
        let got = raw(head);
        assert_eq!(got.0, status, "{got:?}");
        assert!(got.1.contains(says), "{got:?}");
    }
    assert_eq!(get(&ours).0, 200);

    // Bound to every interface: warned about, and still only its own names (address literals) answered.
    let (mut child, port, _) =
        spawn_serve_with(one_run(), &["runs/relu", "--host", "0.0.0.0"], &[]);
    let mut warning = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    while !warning.contains("press Ctrl-C") && stderr.read_line(&mut warning).unwrap() > 0 {}
    let host_get = |host: &str| {
        let head = format!("GET /api/runs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        answer(&mut open(port, &head, Duration::from_secs(10))).map(|(status, _)| status)
    };
    let (ip, name) = (
        host_get(&format!("127.0.0.1:{port}")),
        host_get(&format!("attacker.example:{port}")),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        warning.contains("warning: --host 0.0.0.0 is not a loopback address"),
        "{warning}"
    );
    assert_eq!((ip, name), (Some(200), Some(421)));
}
