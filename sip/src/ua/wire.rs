//! Bad input on the wire: every UDP datagram is screened before rsipstack
//! sees it, because rsipstack drops unparsable requests and unknown methods
//! without a word.
//!
//! - A request that parses and carries usable Via, From (with tag), To,
//!   Call-ID and CSeq headers goes on to rsipstack unchanged.
//! - A request whose method we do not know gets `501 Not Implemented` with
//!   `Allow` ([RFC 3261 §8.2.1](https://www.rfc-editor.org/rfc/rfc3261#section-8.2.1)).
//! - Any other malformed request gets `400 Bad Request` with a `Warning`
//!   naming the fault ([RFC 3261 §21.4.1](https://www.rfc-editor.org/rfc/rfc3261#section-21.4.1),
//!   [§20.43](https://www.rfc-editor.org/rfc/rfc3261#section-20.43)),
//!   answered statelessly, as long as the request line and the Via, From,
//!   To, Call-ID and CSeq lines can be salvaged to address the response.
//! - What cannot be answered (no request line, headers missing, an ACK, a
//!   source over its rate) is dropped and counted in [`WireStats`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rsipstack::sip::headers::untyped::ToTypedHeader;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, Request, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use sha2::{Digest, Sha256};
use tracing::debug;

use super::ALLOW;
use crate::pii::Pii;
use crate::ua::RateLimiter;

/// Salvaged header values longer than this (bytes) are not echoed: the
/// datagram is dropped rather than answered with an amplified response.
const MAX_ECHO: usize = 1024;

/// Counters of the datagram screen, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireStats {
    /// Datagrams handed on to the SIP stack (requests, responses, keepalives).
    pub passed: u64,
    /// Malformed requests answered with 400 and a `Warning`.
    pub bad_request: u64,
    /// Requests with an unknown method answered with 501.
    pub not_implemented: u64,
    /// Datagrams dropped unanswered: nothing to address a response with, an
    /// ACK, or the source over its rate limit.
    pub dropped: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    passed: AtomicU64,
    bad_request: AtomicU64,
    not_implemented: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> WireStats {
        WireStats {
            passed: self.passed.load(Ordering::Relaxed),
            bad_request: self.bad_request.load(Ordering::Relaxed),
            not_implemented: self.not_implemented.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it to the SIP stack.
    Pass,
    /// Answer statelessly with this response (400 or 501) sent to `to`.
    Answer {
        status: u16,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Drop it, for this reason.
    Drop(&'static str),
}

/// The methods rsipstack parses (others fail its parser: 501 for them).
fn known_method(m: &str) -> bool {
    Method::all().iter().any(|k| k.to_string() == m)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The header lines of a datagram, unfolded, with compact names expanded.
fn lenient_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines().skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let n = n.trim();
        let name = match n.to_ascii_lowercase().as_str() {
            "v" | "via" => "Via",
            "f" | "from" => "From",
            "t" | "to" => "To",
            "i" | "call-id" => "Call-ID",
            "cseq" => "CSeq",
            "l" | "content-length" => "Content-Length",
            _ => continue,
        };
        out.push((name.to_string(), v.trim().to_string()));
    }
    out
}

/// The first problem found in a request that rsipstack parsed, if any.
fn request_fault(req: &Request, body_len: usize, raw_head: &str) -> Option<&'static str> {
    let Ok(via) = req.top_via_header() else {
        return Some("Missing or malformed Via header");
    };
    if via.typed().is_err() {
        return Some("Malformed Via header");
    }
    match req.from_header() {
        Err(_) => return Some("Missing From header"),
        Ok(f) => match f.typed() {
            Err(_) => return Some("Malformed From header"),
            Ok(f) if f.tag().is_none() => return Some("Missing From tag"),
            Ok(_) => {}
        },
    }
    match req.to_header() {
        Err(_) => return Some("Missing To header"),
        Ok(t) if t.typed().is_err() => return Some("Malformed To header"),
        Ok(_) => {}
    }
    match req.call_id_header() {
        Err(_) => return Some("Missing Call-ID header"),
        Ok(c) if c.value().trim().is_empty() => return Some("Empty Call-ID header"),
        Ok(_) => {}
    }
    match req.cseq_header() {
        Err(_) => return Some("Missing CSeq header"),
        Ok(c) => match (c.seq(), c.method()) {
            (Ok(_), Ok(m)) if m == req.method => {}
            (Ok(_), Ok(_)) => return Some("CSeq method does not match the request method"),
            _ => return Some("Malformed CSeq header"),
        },
    }
    if let Ok(m) = req.max_forwards_header() {
        if m.value().trim().parse::<u8>().is_err() {
            return Some("Malformed Max-Forwards header");
        }
    }
    // RFC 3261 §18.3: over UDP, a Content-Length larger than the body is an
    // error; rsipstack silently truncates it.
    for (n, v) in lenient_headers(raw_head) {
        if n == "Content-Length" {
            match v.parse::<usize>() {
                Ok(len) if len > body_len => {
                    return Some("Content-Length larger than the datagram")
                }
                Ok(_) => {}
                Err(_) => return Some("Malformed Content-Length header"),
            }
        }
    }
    if TransactionKey::from_request(req, TransactionRole::Server).is_err() {
        return Some("Unusable Via branch, From tag, Call-ID or CSeq");
    }
    None
}

/// Screens one datagram from `src`; `host` is our address as written in
/// the `Warning` header.
pub(crate) fn screen(datagram: &[u8], src: SocketAddr, host: &str) -> Verdict {
    if datagram.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Pass; // RFC 5626 keepalives: rsipstack answers them.
    }
    if datagram.starts_with(b"SIP/") {
        // A response: nothing to answer; rsipstack drops a broken one.
        return Verdict::Pass;
    }
    let (head_bytes, body_len) = match find(datagram, b"\r\n\r\n") {
        Some(i) => (&datagram[..i], datagram.len() - i - 4),
        None => (datagram, 0),
    };
    let head = String::from_utf8_lossy(head_bytes);
    let fault = match SipMessage::try_from(datagram) {
        Ok(SipMessage::Request(req)) => match request_fault(&req, body_len, &head) {
            None => return Verdict::Pass,
            Some(f) => f,
        },
        Ok(SipMessage::Response(_)) => return Verdict::Pass,
        Err(_) if find(datagram, b"\r\n\r\n").is_none() => {
            "Missing the empty line after the headers"
        }
        Err(_) if std::str::from_utf8(head_bytes).is_err() => "Headers are not UTF-8",
        Err(_) => "Unparsable request",
    };
    // Salvage what a response needs.
    let first = head.lines().next().unwrap_or_default();
    let parts: Vec<&str> = first.split(' ').collect();
    if parts.len() != 3 || parts[2].trim_end() != "SIP/2.0" || !is_token(parts[0]) {
        return Verdict::Drop("no request line");
    }
    let method = parts[0];
    if method == "ACK" {
        return Verdict::Drop("malformed ACK");
    }
    let headers = lenient_headers(&head);
    let get = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let vias = get("Via");
    let (Some(from), Some(to), Some(call_id), Some(cseq)) = (
        get("From").first().copied(),
        get("To").first().copied(),
        get("Call-ID").first().copied(),
        get("CSeq").first().copied(),
    ) else {
        return Verdict::Drop("From, To, Call-ID or CSeq missing");
    };
    let Some(top_via) = vias.first() else {
        return Verdict::Drop("no Via");
    };
    let echoed = vias.iter().map(|v| v.len()).sum::<usize>()
        + from.len()
        + to.len()
        + call_id.len()
        + cseq.len();
    if echoed > MAX_ECHO || [from, to, call_id, cseq].iter().any(|v| v.is_empty()) {
        return Verdict::Drop("headers too long or empty to echo");
    }
    let Some(to_addr) = reply_address(top_via, src) else {
        return Verdict::Drop("unusable Via");
    };
    let (status, reason, extra) = if known_method(method) {
        (
            400,
            "Bad Request",
            format!("Warning: 399 {host} \"{fault}\"\r\n"),
        )
    } else {
        (
            501,
            "Not Implemented",
            format!("Allow: {ALLOW}\r\nWarning: 399 {host} \"Method not implemented\"\r\n"),
        )
    };
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for (i, v) in vias.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("Via: {}\r\n", received(v, src)));
        } else {
            out.push_str(&format!("Via: {v}\r\n"));
        }
    }
    let to = if to.to_ascii_lowercase().contains(";tag=") {
        to.to_string()
    } else {
        // A stable tag, so a retransmission gets the same response.
        let h = Sha256::digest(format!("{call_id}\n{from}\n{cseq}").as_bytes());
        format!("{to};tag={}", hex::encode(&h[..6]))
    };
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
    ));
    Verdict::Answer {
        status,
        to: to_addr,
        bytes: out.into_bytes(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The top Via with `received` (and `rport` filled in) for `src`,
/// [RFC 3261 §18.2.1](https://www.rfc-editor.org/rfc/rfc3261#section-18.2.1),
/// [RFC 3581 §4](https://www.rfc-editor.org/rfc/rfc3581#section-4).
fn received(via: &str, src: SocketAddr) -> String {
    // Only the first entry of a comma list is ours to annotate.
    let (first, rest) = match via.split_once(',') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (via.trim(), None),
    };
    let params: Vec<String> = first
        .split(';')
        .skip(1)
        .filter(|p| {
            let p = p.trim().to_ascii_lowercase();
            p != "rport" && !p.starts_with("received=")
        })
        .map(str::to_string)
        .collect();
    let base = first.split(';').next().unwrap_or_default();
    let rport = first
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("rport"));
    let mut s = base.to_string();
    for p in params {
        s.push(';');
        s.push_str(p.trim());
    }
    s.push_str(&format!(";received={}", src.ip()));
    if rport {
        s.push_str(&format!(";rport={}", src.port()));
    }
    match rest {
        Some(r) => format!("{s}, {r}"),
        None => s,
    }
}

/// Where a stateless response to a request with top Via `via` from `src`
/// goes ([RFC 3261 §18.2.2](https://www.rfc-editor.org/rfc/rfc3261#section-18.2.2),
/// [RFC 3581](https://www.rfc-editor.org/rfc/rfc3581)): the source address,
/// at the source port with `rport`, else at the sent-by port (5060 when
/// absent). `None` when the Via has no sent-by at all.
fn reply_address(via: &str, src: SocketAddr) -> Option<SocketAddr> {
    let first = via.split(',').next()?.trim();
    let mut it = first.split(';');
    let proto_sentby = it.next()?.trim();
    let rport = it.any(|p| p.trim().eq_ignore_ascii_case("rport"));
    let sent_by = proto_sentby.split_whitespace().nth(1)?;
    if rport {
        return Some(src);
    }
    let port = if let Some(v6) = sent_by.strip_prefix('[') {
        v6.split_once("]:").map(|(_, p)| p)
    } else {
        sent_by.rsplit_once(':').map(|(_, p)| p)
    };
    match port {
        None => Some(SocketAddr::new(src.ip(), 5060)),
        Some(p) => p.parse().ok().map(|p| SocketAddr::new(src.ip(), p)),
    }
}

/// The UDP socket handed to rsipstack: its `recv_from` returns only the
/// datagrams [`screen`] passes and answers or drops the rest itself.
pub(crate) struct ScreenedSocket {
    pub(crate) socket: tokio::net::UdpSocket,
    pub(crate) host: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) limiter: Arc<RateLimiter>,
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (n, src) = self.socket.recv_from(buf).await?;
            match screen(&buf[..n], src, &self.host) {
                Verdict::Pass => {
                    self.counters.passed.fetch_add(1, Ordering::Relaxed);
                    return Ok((n, src));
                }
                Verdict::Answer { status, to, bytes } => {
                    if !self.limiter.admit(src.ip()) {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        debug!(src = %Pii(src), status, "bad request over the rate limit: dropped");
                        continue;
                    }
                    let counter = if status == 501 {
                        &self.counters.not_implemented
                    } else {
                        &self.counters.bad_request
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %Pii(src), status, "bad request answered statelessly");
                    if let Err(e) = self.socket.send_to(&bytes, to).await {
                        debug!(error = %e, "stateless response not sent");
                    }
                }
                Verdict::Drop(why) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %Pii(src), why, len = n, "datagram dropped");
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "127.0.0.1:40000";

    fn req(method: &str, extra: &str) -> String {
        format!(
            "{method} sip:+1555@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    fn answer(v: Verdict) -> (u16, String) {
        match v {
            Verdict::Answer { status, bytes, .. } => (status, String::from_utf8(bytes).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn good_requests_pass() {
        let src = SRC.parse().unwrap();
        assert_eq!(
            screen(req("OPTIONS", "").as_bytes(), src, "h"),
            Verdict::Pass
        );
        assert_eq!(screen(b"\r\n\r\n", src, "h"), Verdict::Pass);
        assert_eq!(screen(b"SIP/2.0 200 OK\r\n\r\n", src, "h"), Verdict::Pass);
    }

    #[test]
    fn unknown_method_501_with_allow() {
        let src = SRC.parse().unwrap();
        let (status, text) = answer(screen(req("FOO", "").as_bytes(), src, "127.0.0.1:5060"));
        assert_eq!(status, 501);
        assert!(
            text.starts_with("SIP/2.0 501 Not Implemented\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!("Allow: {ALLOW}\r\n")), "{text}");
        assert!(text.contains("CSeq: 7 FOO\r\n"), "{text}");
        assert!(text.contains("received=127.0.0.1;rport=40000"), "{text}");
        assert!(text.contains("To: <sip:b@127.0.0.1>;tag="), "{text}");
    }

    #[test]
    fn malformed_headers_400_with_warning() {
        let src: SocketAddr = SRC.parse().unwrap();
        let cases = [
            (
                req("INVITE", "").replace("CSeq: 7", "CSeq: x"),
                "Malformed CSeq",
            ),
            (
                req("INVITE", "").replace("CSeq: 7 INVITE", "CSeq: 7 BYE"),
                "CSeq method",
            ),
            (
                req("INVITE", "").replace("Max-Forwards: 70", "Max-Forwards: lots"),
                "Max-Forwards",
            ),
            (
                req("INVITE", "").replace("Content-Length: 0", "Content-Length: 40"),
                "Content-Length",
            ),
            (req("INVITE", "").replace(";tag=f1", ""), "From tag"),
            (
                req("INVITE", "").replace("sip:+1555@127.0.0.1 SIP", "sip:@@:: SIP"),
                "Unparsable",
            ),
        ];
        for (text, want) in cases {
            let (status, resp) = answer(screen(text.as_bytes(), src, "127.0.0.1:5060"));
            assert_eq!(status, 400, "{text}");
            let warning = resp
                .lines()
                .find(|l| l.starts_with("Warning: 399 127.0.0.1:5060 \""))
                .unwrap_or_else(|| panic!("no Warning in {resp}"));
            assert!(warning.contains(want), "{warning} for {text}");
            assert!(resp.contains("Call-ID: c1\r\n"), "{resp}");
        }
    }

    #[test]
    fn unanswerable_dropped() {
        let src: SocketAddr = SRC.parse().unwrap();
        assert!(matches!(screen(b"hello", src, "h"), Verdict::Drop(_)));
        let no_cseq = req("FOO", "").replace("CSeq: 7 FOO\r\n", "");
        assert!(matches!(
            screen(no_cseq.as_bytes(), src, "h"),
            Verdict::Drop(_)
        ));
        let ack = req("ACK", "").replace("CSeq: 7", "CSeq: x");
        assert!(matches!(screen(ack.as_bytes(), src, "h"), Verdict::Drop(_)));
        let long = req("FOO", "X: y\r\n")
            .replace("Call-ID: c1", &format!("Call-ID: {}", "c".repeat(2000)));
        assert!(matches!(
            screen(long.as_bytes(), src, "h"),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn reply_goes_to_sent_by_port_without_rport() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(
            reply_address("SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx", src),
            Some("127.0.0.1:5080".parse().unwrap())
        );
        assert_eq!(
            reply_address("SIP/2.0/UDP host.example;branch=z9hG4bKx", src),
            Some("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            reply_address("SIP/2.0/UDP [::1]:5082;rport", src),
            Some(src)
        );
        assert_eq!(reply_address("garbage", src), None);
    }
}
