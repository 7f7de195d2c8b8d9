//! Who may ask `lenet5 serve`: a request must name the server by an address it was bound to (the Host
//! header: no DNS rebinding), come from its own page or from no page (the Origin header: no other site), and
//! send an image as an image (the Content-Type: no cross-origin form or `text/plain` POST, which a browser
//! sends without asking). Each refusal is a status and a one-line reason.

use std::net::{IpAddr, SocketAddr};

/// The names a request may call the server by, fixed when it binds.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Host names and address literals accepted (lower case; IPv6 in brackets).
    names: Vec<String>,
    /// Bound to every interface (0.0.0.0, ::): any address literal names this machine.
    any_address: bool,
    port: u16,
}

/// A request refused: its status (4xx) and why.
pub type Refusal = (u16, String);

impl Guard {
    /// The guard for a server bound to `bound`, asked for as `host` (`--host`, which may be a name).
    pub fn new(host: &str, bound: SocketAddr) -> Guard {
        let ip = bound.ip();
        let mut names = vec![host.to_ascii_lowercase(), literal(ip)];
        if ip.is_loopback() || ip.is_unspecified() {
            names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        Guard {
            names,
            any_address: ip.is_unspecified(),
            port: bound.port(),
        }
    }

    /// Whether `authority` (`host[:port]`) names this server: one of its names, and its port (or none, when
    /// the port is 80).
    fn names_us(&self, authority: &str) -> bool {
        let Ok(authority) = authority.parse::<hyper::http::uri::Authority>() else {
            return false;
        };
        if authority.as_str().contains('@') || authority.port_u16().unwrap_or(80) != self.port {
            return false;
        }
        let host = authority.host().to_ascii_lowercase();
        let is_literal = host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
        self.names.contains(&host) || (self.any_address && is_literal)
    }

    /// Refuses a request whose Host is missing or names another server, or whose Origin is another site.
    pub fn check(&self, headers: &hyper::HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(hyper::header::HOST).map(|h| h.to_str());
        match host {
            Some(Ok(host)) if self.names_us(host) => {}
            Some(Ok(host)) => return Err((421, format!("this server is not {host:?}"))),
            _ => return Err((400, "a Host header naming this server is required".into())),
        }
        if let Some(origin) = headers.get(hyper::header::ORIGIN) {
            let site = origin.to_str().unwrap_or("");
            let ours = site
                .strip_prefix("http://")
                .is_some_and(|authority| self.names_us(authority));
            if !ours {
                return Err((
                    403,
                    format!("requests from another site ({site:?}) are refused"),
                ));
            }
        }
        Ok(())
    }
}

/// Refuses a body that does not say it is an image: browsers send `text/plain`, form encodings or no type
/// at all across sites without asking first, so only `image/*` and `application/octet-stream` are read.
pub fn image_content_type(headers: &hyper::HeaderMap) -> Result<(), Refusal> {
    let given = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("image/") || media == "application/octet-stream" {
        return Ok(());
    }
    let given = if given.is_empty() { "none" } else { given };
    Err((
        415,
        format!("send the image with Content-Type: image/png or image/jpeg (given: {given})"),
    ))
}

/// An address as a Host header writes it (IPv6 in brackets).
fn literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}
