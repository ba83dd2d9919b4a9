//! The harness's own guarantees: peers die by pid when their guard drops, time limits
//! hold, output lands in the log, ports do not collide, Prosody survives a restart.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use testbed::{
    ports, Namespace, ProcessBuilder, Prosody, Scratch, Stdout, WebrtcClient, WebrtcConfig,
};

/// Whether `pid` is gone (or a zombie waiting for a reaper that is not us).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_dead(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn dropping_a_process_kills_its_whole_group() {
    let scratch = Scratch::new("harness-kill").expect("scratch");
    let pidfile = scratch.join("grandchild.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let process = ProcessBuilder::new("sleeper", "sh")
        .args(["-c", &script])
        .time_limit(Duration::from_secs(30))
        .spawn(scratch.path())
        .expect("spawn");
    let leader = process.pid();
    let deadline = Instant::now() + Duration::from_secs(5);
    let grandchild: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the script never wrote its child's pid"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!is_dead(grandchild), "sleep runs");
    drop(process);
    assert!(is_dead(leader), "timeout(1), the group leader, is reaped");
    assert!(
        wait_dead(grandchild),
        "the grandchild (sleep {grandchild}) was killed with the group"
    );
}

#[test]
fn time_limit_ends_a_hanging_peer() {
    let scratch = Scratch::new("harness-limit").expect("scratch");
    let mut process = ProcessBuilder::new("hang", "sleep")
        .arg("30")
        .time_limit(Duration::from_secs(1))
        .spawn(scratch.path())
        .expect("spawn");
    let started = Instant::now();
    let status = process
        .wait_timeout(Duration::from_secs(10))
        .expect("ends by its time limit");
    assert!(!status.success(), "timeout(1) reports the kill: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn output_goes_to_the_log_and_stdout_can_be_piped() {
    let scratch = Scratch::new("harness-log").expect("scratch");
    let mut process = ProcessBuilder::new("talker", "sh")
        .args(["-c", "echo to-stdout; echo to-stderr >&2"])
        .spawn(scratch.path())
        .expect("spawn");
    assert!(process
        .wait_timeout(Duration::from_secs(10))
        .expect("exits")
        .success());
    let log = process.log_tail(10);
    assert!(
        log.contains("to-stdout") && log.contains("to-stderr"),
        "{log}"
    );
    assert_eq!(process.log_path(), scratch.join("talker.log"));

    let mut piped = ProcessBuilder::new("piped", "sh")
        .args(["-c", "echo on-pipe; echo on-log >&2"])
        .stdout(Stdout::Piped)
        .spawn(scratch.path())
        .expect("spawn");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut piped.take_stdout().expect("piped"), &mut out)
        .expect("read pipe");
    assert!(piped
        .wait_timeout(Duration::from_secs(10))
        .expect("exits")
        .success());
    assert_eq!(out, "on-pipe\n");
    let log = piped.log_tail(10);
    assert!(log.contains("on-log") && !log.contains("on-pipe"), "{log}");
}

#[test]
fn ports_are_distinct_free_and_below_the_ephemeral_range() {
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let p = ports::free_port();
        assert!((ports::FIRST..ports::END).contains(&p), "{p}");
        assert!(seen.insert(p), "port {p} handed out twice");
        // still free: nobody holds it
        UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).expect("free for UDP");
    }
    let start = ports::free_port_range(10);
    for p in start..start + 10 {
        assert!(!seen.contains(&p), "range overlaps an earlier port {p}");
        assert!(ports::is_free(p));
    }
}

#[test]
fn the_suite_runs_in_a_loopback_only_namespace() {
    Namespace::require_loopback_only();
    let ns = Namespace::current().expect("namespace");
    assert_eq!(ns.interfaces, ["lo"]);
    assert!(ns.lo_up);
}

#[test]
fn prosody_can_be_killed_and_restarted_with_its_data() {
    Namespace::require_loopback_only();
    let scratch = Scratch::new("harness-prosody").expect("scratch");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody starts");
    prosody.register("carol", "carol-pw").expect("register");
    let c2s = SocketAddr::from((Ipv4Addr::LOCALHOST, prosody.c2s_port()));
    let component = SocketAddr::from((Ipv4Addr::LOCALHOST, prosody.component_port()));
    assert!(TcpStream::connect(component).is_ok(), "component port open");
    let first_pid = prosody.pid().expect("running");
    for port in [
        prosody.c2s_port(),
        prosody.component_port(),
        prosody.http_port(),
    ] {
        assert!(ports::is_listening(port), "port {port} listens");
    }
    assert_eq!(prosody.component_authentications(), 0);

    prosody.kill();
    assert!(!prosody.is_running());
    assert!(wait_dead(first_pid), "prosody's group leader is gone");
    assert!(
        TcpStream::connect(c2s).is_err(),
        "nothing listens after the kill"
    );
    assert!(
        TcpStream::connect(component).is_err(),
        "component port closed"
    );
    assert!(!ports::is_listening(prosody.component_port()));

    prosody.restart().expect("prosody restarts");
    assert_ne!(prosody.pid(), Some(first_pid));
    assert!(
        TcpStream::connect(component).is_ok(),
        "same component port again"
    );
    // the account made before the kill still logs in
    let mut config = WebrtcConfig::new(prosody.jid("carol"), "carol-pw");
    config.time_limit = Duration::from_secs(30);
    let carol =
        WebrtcClient::start(&scratch, &prosody, &config).expect("carol logs in after restart");
    assert_eq!(carol.jid(), "carol@localhost/testbed");
    carol.quit();
}

#[test]
fn webrtc_client_logs_in_over_bosh_and_raw_stanzas_pass() {
    Namespace::require_loopback_only();
    let scratch = Scratch::new("harness-bosh").expect("scratch");
    let prosody = Prosody::start_default(&scratch).expect("prosody starts");
    prosody.register("dave", "dave-pw").expect("register");
    let mut config = WebrtcConfig::new(prosody.jid("dave"), "dave-pw");
    config.bosh = true;
    config.time_limit = Duration::from_secs(30);
    let mut dave =
        WebrtcClient::start(&scratch, &prosody, &config).expect("dave logs in over BOSH");
    let info = dave.disco("localhost", None).expect("server disco#info");
    assert!(
        info.get("identities")
            .expect("identities")
            .to_string()
            .contains("\"server\""),
        "{info:?}"
    );
    // a raw stanza reaches the server: an IQ ping to it is answered
    dave.send_raw("<iq xmlns='jabber:client' type='get' id='raw-ping-1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .expect("raw write");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answered = dave
            .stanzas()
            .expect("stanza log")
            .iter()
            .any(|s| s.dir == "in" && s.xml.contains("raw-ping-1") && s.xml.contains("result"));
        if answered {
            break;
        }
        assert!(Instant::now() < deadline, "no answer to the raw ping");
        std::thread::sleep(Duration::from_millis(50));
    }
    dave.quit();
}
