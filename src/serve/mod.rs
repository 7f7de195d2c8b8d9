//! `lenet5 serve`: a local web page to draw a digit and watch each trained net's layers, and the JSON API it
//! uses ([`api`]). One [`tiny_http`] server, a few worker threads over the read-only models, the page and a
//! sample digit embedded in the binary; Ctrl-C stops it cleanly.

pub mod api;

use anyhow::{Context, Result};
use api::Served;
use lenet5_lab::sys::interrupt::Interrupt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Requests handled at once (the models are read-only; more wait in the queue).
pub const WORKERS: usize = 8;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    /// 0: any free port (printed).
    pub port: u16,
}

/// Serves `runs` until Ctrl-C or SIGTERM; prints the URL first (with the port chosen when `port` is 0).
pub fn serve(runs: Vec<Served>, opts: &Options) -> Result<()> {
    let addr = format!("{}:{}", opts.host, opts.port);
    let server = tiny_http::Server::http(&addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let server = Arc::new(server);
    let port = server.server_addr().to_ip().map_or(opts.port, |a| a.port());
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    println!(
        "serving {} at http://{}:{port}/",
        names.join(", "),
        opts.host
    );
    eprintln!("press Ctrl-C to stop");
    let interrupt = Interrupt::install().context("cannot install the Ctrl-C handler")?;
    let runs = Arc::new(runs);
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, runs, stop) = (Arc::clone(&server), Arc::clone(&runs), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Each worker finishes the request in hand, then sees the stop flag.
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => api::respond(request, &runs),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    while interrupt.requested().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    eprintln!("stopped");
    Ok(())
}
