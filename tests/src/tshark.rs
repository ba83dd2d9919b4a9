//! A packet capture on `lo` with Debian's `tshark` (Wireshark's dissectors), the
//! independent witness of what went over the wire: the SDP a SIP peer saw and the
//! RFC 4733 telephone-events ([RFC 4733 §2.3](https://www.rfc-editor.org/rfc/rfc4733#section-2.3))
//! on an RTP port.
//!
//! [`Tshark::start`] captures with a BPF filter into a pcap file in the scratch
//! directory, bounded in time like every peer; [`Tshark::stop`] ends it with SIGTERM
//! (the file is complete afterwards); [`Tshark::sdp`] and [`Tshark::rtp_events`] then
//! read the file back with `tshark -r`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{run_bounded, Process, ProcessBuilder};
use crate::{Error, Result, Scratch};

/// Bound of one `tshark -r` pass over the capture.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// A running (or stopped) capture. Dropping it kills tshark by pid.
#[derive(Debug)]
pub struct Tshark {
    process: Process,
    pcap: PathBuf,
}

/// One SIP message with an SDP body, as tshark decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSdp {
    /// UDP source port of the message.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The request method (`INVITE`, …) or empty for a response.
    pub method: String,
    /// The status code of a response, 0 for a request.
    pub status: u16,
    /// The `m=` lines (`audio 40000 RTP/AVP 0 101`).
    pub media: Vec<String>,
    /// The `a=` lines of the media, without `a=` (`rtpmap:101 telephone-event/8000`).
    pub attributes: Vec<String>,
}

impl SipSdp {
    /// The port of the first `m=audio` line.
    #[must_use]
    pub fn audio_port(&self) -> Option<u16> {
        self.media
            .iter()
            .find_map(|m| m.strip_prefix("audio ")?.split(' ').next()?.parse().ok())
    }

    /// The payload type mapped to `telephone-event/<clock>` by an `a=rtpmap`.
    #[must_use]
    pub fn telephone_event_pt(&self, clock: u32) -> Option<u8> {
        let want = format!("telephone-event/{clock}");
        self.attributes.iter().find_map(|a| {
            let (pt, enc) = a.strip_prefix("rtpmap:")?.split_once(' ')?;
            enc.eq_ignore_ascii_case(&want).then(|| pt.parse().ok())?
        })
    }
}

/// One RTP packet carrying a telephone-event (RFC 4733 §2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct RtpEvent {
    /// Capture time, seconds since the Unix epoch.
    pub time: f64,
    /// UDP source and destination ports.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP marker bit (set on the first packet of an event).
    pub marker: bool,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp (the event's start, in the payload type's clock).
    pub timestamp: u32,
    /// RTP SSRC.
    pub ssrc: u32,
    /// The event code (0–9 digits, 10 `*`, 11 `#`, 12–15 A–D).
    pub event: u8,
    /// The E bit: end of the event.
    pub end: bool,
    /// Volume, in −dBm0.
    pub volume: u8,
    /// Duration so far, in clock ticks of the payload type.
    pub duration: u16,
}

/// The header of one RTP packet (readable on SRTP too: RFC 3711 encrypts only the payload).
#[derive(Debug, Clone, PartialEq)]
pub struct RtpPacket {
    /// Capture time, seconds since the Unix epoch.
    pub time: f64,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP marker bit.
    pub marker: bool,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP SSRC.
    pub ssrc: u32,
}

impl RtpEvent {
    /// The key of an event code: `0`–`9`, `*`, `#`, `A`–`D` (`?` otherwise).
    #[must_use]
    pub fn key(&self) -> char {
        match self.event {
            0..=9 => char::from(b'0' + self.event),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + self.event - 12),
            _ => '?',
        }
    }
}

impl Tshark {
    /// Starts `tshark -i lo -f FILTER -w NAME.pcap`, bounded by `limit` (tshark's own
    /// `-a duration:` and `timeout(1)`), and waits until it captures.
    ///
    /// # Errors
    /// [`Error::Missing`] if tshark is not installed (`scripts/install-deps`),
    /// [`Error::Io`] if it cannot be started, [`Error::TimedOut`]/[`Error::Exited`] if
    /// it never reports that it is capturing.
    pub fn start(scratch: &Scratch, name: &str, filter: &str, limit: Duration) -> Result<Self> {
        if !Path::new("/usr/bin/tshark").exists() {
            return Err(Error::Missing {
                what: "tshark".into(),
                hint: "run scripts/install-deps (Debian package tshark)".into(),
            });
        }
        let pcap = scratch.join(format!("{name}.pcap"));
        let mut process = ProcessBuilder::new(format!("tshark-{name}"), "tshark")
            .args(["-i", "lo", "-n", "-q", "-f", filter, "-w"])
            .arg(&pcap)
            .arg("-a")
            .arg(format!("duration:{}", limit.as_secs().max(1)))
            .time_limit(limit + Duration::from_secs(5))
            .spawn(scratch.path())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(process.log_path()).unwrap_or_default();
            if log.contains("Capturing on") {
                break;
            }
            process.check_running()?;
            if Instant::now() > deadline {
                return Err(Error::TimedOut {
                    what: "tshark to start capturing".into(),
                    after: Duration::from_secs(20),
                    context: process.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { process, pcap })
    }

    /// The capture file.
    #[must_use]
    pub fn pcap(&self) -> &Path {
        &self.pcap
    }

    /// Ends the capture (SIGTERM, then SIGKILL after 5 s); the pcap is complete after.
    pub fn stop(&mut self) {
        // packets still in the kernel's buffer reach the file before tshark exits
        std::thread::sleep(Duration::from_millis(300));
        self.process.terminate(Duration::from_secs(5));
    }

    /// Runs `tshark -r PCAP` with `extra` arguments and `-T fields -e …` for `fields`;
    /// one row per packet, fields split on tabs, multiple values of one field joined
    /// with `|`.
    fn read_fields(&self, extra: &[String], fields: &[&str]) -> Result<Vec<Vec<String>>> {
        let mut args: Vec<String> = vec!["-n".into(), "-r".into(), self.pcap.display().to_string()];
        args.extend(extra.iter().cloned());
        args.extend(["-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"].map(String::from));
        for f in fields {
            args.push("-e".into());
            args.push((*f).into());
        }
        let out = run_bounded("tshark", &args, READ_LIMIT)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    /// The SIP messages with SDP sent to or from UDP `sip_port` (decoded as SIP).
    ///
    /// # Errors
    /// [`Error::Peer`] if `tshark -r` fails.
    pub fn sdp(&self, sip_port: u16) -> Result<Vec<SipSdp>> {
        let rows = self.read_fields(
            &[
                "-d".into(),
                format!("udp.port=={sip_port},sip"),
                "-Y".into(),
                "sdp".into(),
            ],
            &[
                "udp.srcport",
                "udp.dstport",
                "sip.Method",
                "sip.Status-Code",
                "sdp.media",
                "sdp.media_attr",
            ],
        )?;
        let split = |s: &str| -> Vec<String> {
            s.split('|')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Ok(rows
            .iter()
            .filter(|r| r.len() >= 6)
            .map(|r| SipSdp {
                src_port: r[0].parse().unwrap_or(0),
                dst_port: r[1].parse().unwrap_or(0),
                method: r[2].clone(),
                status: r[3].parse().unwrap_or(0),
                media: split(&r[4]),
                attributes: split(&r[5]),
            })
            .collect())
    }

    /// Every packet of payload type `pt` to or from UDP `rtp_port`, decoded as RTP with
    /// `pt` as the telephone-event payload type.
    ///
    /// # Errors
    /// [`Error::Peer`] if `tshark -r` fails or a row does not parse.
    pub fn rtp_events(&self, rtp_port: u16, pt: u8) -> Result<Vec<RtpEvent>> {
        let rows = self.read_fields(
            &[
                "-d".into(),
                format!("udp.port=={rtp_port},rtp"),
                "-o".into(),
                format!("rtpevent.event_payload_type_value:{pt}"),
                "-Y".into(),
                format!("rtp.p_type == {pt}"),
            ],
            &[
                "frame.time_epoch",
                "udp.srcport",
                "udp.dstport",
                "rtp.p_type",
                "rtp.marker",
                "rtp.seq",
                "rtp.timestamp",
                "rtp.ssrc",
                "rtpevent.event_id",
                "rtpevent.end_of_event",
                "rtpevent.volume",
                "rtpevent.duration",
            ],
        )?;
        rows.iter()
            .map(|r| parse_event(r).ok_or_else(|| bad_row(r)))
            .collect()
    }

    /// The headers of the packets of payload type `pt` to or from UDP `rtp_port`.
    ///
    /// # Errors
    /// [`Error::Peer`] if `tshark -r` fails or a row does not parse.
    pub fn rtp_packets(&self, rtp_port: u16, pt: u8) -> Result<Vec<RtpPacket>> {
        let rows = self.read_fields(
            &[
                "-d".into(),
                format!("udp.port=={rtp_port},rtp"),
                "-Y".into(),
                format!("rtp.p_type == {pt}"),
            ],
            &[
                "frame.time_epoch",
                "udp.srcport",
                "udp.dstport",
                "rtp.p_type",
                "rtp.marker",
                "rtp.seq",
                "rtp.timestamp",
                "rtp.ssrc",
            ],
        )?;
        rows.iter()
            .map(|r| parse_packet(r).ok_or_else(|| bad_row(r)))
            .collect()
    }

    /// How many packets to or from UDP `rtp_port` tshark decodes as RTP with payload
    /// type `pt`.
    ///
    /// # Errors
    /// [`Error::Peer`] if `tshark -r` fails.
    pub fn rtp_count(&self, rtp_port: u16, pt: u8) -> Result<usize> {
        Ok(self
            .read_fields(
                &[
                    "-d".into(),
                    format!("udp.port=={rtp_port},rtp"),
                    "-Y".into(),
                    format!("rtp.p_type == {pt}"),
                ],
                &["rtp.seq"],
            )?
            .len())
    }

    /// The tshark process (pid, log).
    #[must_use]
    pub fn process(&self) -> &Process {
        &self.process
    }
}

fn bad_row(r: &[String]) -> Error {
    Error::Peer {
        peer: "tshark".into(),
        message: format!("unexpected RTP row {r:?}"),
    }
}

fn flag(s: &str) -> Option<bool> {
    match s {
        "1" | "True" | "true" => Some(true),
        "0" | "False" | "false" => Some(false),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|v| v.to_string().parse().ok()),
        None => s.parse().ok(),
    }
}

fn parse_packet(r: &[String]) -> Option<RtpPacket> {
    if r.len() < 8 {
        return None;
    }
    Some(RtpPacket {
        time: r[0].parse().ok()?,
        src_port: number(&r[1])?,
        dst_port: number(&r[2])?,
        payload_type: number(&r[3])?,
        marker: flag(&r[4])?,
        sequence: number(&r[5])?,
        timestamp: number(&r[6])?,
        ssrc: number(&r[7])?,
    })
}

fn parse_event(r: &[String]) -> Option<RtpEvent> {
    if r.len() < 12 {
        return None;
    }
    Some(RtpEvent {
        time: r[0].parse().ok()?,
        src_port: number(&r[1])?,
        dst_port: number(&r[2])?,
        payload_type: number(&r[3])?,
        marker: flag(&r[4])?,
        sequence: number(&r[5])?,
        timestamp: number(&r[6])?,
        ssrc: number(&r[7])?,
        event: number(&r[8])?,
        end: flag(&r[9])?,
        volume: number(&r[10])?,
        duration: number(&r[11])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_row_and_sdp() {
        let row: Vec<String> = [
            "1.5",
            "4000",
            "5000",
            "101",
            "1",
            "7",
            "160",
            "0x00001234",
            "11",
            "0",
            "10",
            "400",
        ]
        .map(String::from)
        .to_vec();
        let e = parse_event(&row).unwrap();
        assert_eq!(
            (e.key(), e.ssrc, e.marker, e.end, e.duration),
            ('#', 0x1234, true, false, 400)
        );
        let sdp = SipSdp {
            src_port: 1,
            dst_port: 2,
            method: String::new(),
            status: 200,
            media: vec!["audio 40002 RTP/AVP 0 101".into()],
            attributes: vec![
                "rtpmap:0 PCMU/8000".into(),
                "rtpmap:101 telephone-event/8000".into(),
            ],
        };
        assert_eq!(sdp.audio_port(), Some(40002));
        assert_eq!(sdp.telephone_event_pt(8000), Some(101));
        assert_eq!(sdp.telephone_event_pt(48000), None);
    }
}
