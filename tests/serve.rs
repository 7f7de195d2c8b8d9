//! `lenet5 serve` over HTTP on an ephemeral port: the page, both API calls, every bad input (and a good
//! request after each), concurrent requests, agreement with `lenet5 predict --json`, Ctrl-C; and the page in
//! a real browser (headless Chromium), which loads the sample digit and shows its prediction.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_lenet5"))
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    (child, port)
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

/// One HTTP/1.1 request: (status, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(port, &head, body)
}

/// One POST whose body is sent chunked (no Content-Length, so the server learns its size only by reading
/// it): (status, body).
fn post_chunked(port: u16, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
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
        .set_read_timeout(Some(Duration::from_secs(60)))
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
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    }
    let mut ihdr = 50_000u32.to_be_bytes().to_vec();
    ihdr.extend(50_000u32.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
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
        ("POST", "/api/predict", bomb_png(), 400, "cannot read image"),
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
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still serving 10 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(exit.success() && err.contains("stopped"), "{exit:?}: {err}");
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
    // Every layer of every run is drawn: 3 runs × (6 + 6 + 16 + 16 + 3) maps and strips, at least.
    assert!(
        dom.matches("class=\"map\"").count() >= 3 * 47,
        "layer maps drawn"
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
