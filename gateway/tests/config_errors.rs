//! Mistyped values and semantic problems are reported with key, file and line, all of
//! them at once; `--check-config` prints one line per problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::config::{Config, Error, Problems};

const VALID: &str = r#"
[xmpp]
domain = "gw.example.com"
secret = "component-secret"

[[sip.trunks]]
name = "carrier"
host = "sip.example.net"
auth = "registration"
username = "gw"
password = "trunk-password"

[routing]
allowed_callers = ["alice@example.org"]

[[routing.routes]]
prefix = "+1"
trunks = ["carrier"]

[[routing.users]]
jid = "alice@example.org"
caller_id = "+15551230001"
dids = ["+15551230001"]
"#;

fn problems(text: &str) -> Problems {
    match Config::parse(text, Path::new("test.toml"), Vec::new()) {
        Err(Error::Invalid(p)) => p,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

fn keys(p: &Problems) -> Vec<&str> {
    p.problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn valid_config_loads_with_defaults() {
    let config = Config::parse(VALID, Path::new("test.toml"), Vec::new()).unwrap();
    assert_eq!(config.xmpp.port, 5347);
    assert_eq!(config.xmpp.resource, "gw");
    assert_eq!(config.xmpp.caps_node(), "https://gw.example.com/caps");
    assert_eq!(config.calls.ring_timeout.as_secs(), 45);
    assert_eq!(config.media.no_media_timeout.as_secs(), 30);
    assert!(!config.media.allow_unencrypted_client_media);
    assert_eq!(config.sip.trunks[0].port(), 5060);
}

#[test]
fn string_for_port_names_key_file_and_line() {
    let text = VALID.replace(
        "secret = \"component-secret\"",
        "secret = \"component-secret\"\nport = \"5347\"",
    );
    let p = problems(&text);
    assert_eq!(keys(&p), ["xmpp.port"], "{p}");
    let problem = &p.problems[0];
    assert_eq!(problem.line, Some(5));
    let shown = problem.to_string();
    assert!(shown.starts_with("test.toml:5: xmpp.port: "), "{shown}");
    assert!(shown.contains("expected u16"), "{shown}");
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = VALID
        .replace(
            "domain = \"gw.example.com\"",
            "domain = \"gw.example.com\"\nprot = 5347",
        )
        .replace(
            "host = \"sip.example.net\"",
            "host = \"sip.example.net\"\ntransport = \"sctp\"",
        )
        .replace(
            "trunks = [\"carrier\"]",
            "trunks = [\"carrier\", \"missing\"]",
        )
        .replace(
            "dids = [\"+15551230001\"]",
            "dids = [\"+15551230001\", \"5551230002\"]",
        );
    let p = problems(&text);
    assert_eq!(
        keys(&p),
        [
            "xmpp.prot",
            "sip.trunks[0].transport",
            "routing.routes[0].trunks[1]",
            "routing.users[0].dids[1]",
        ],
        "{p}"
    );
    let lines: Vec<Option<usize>> = p.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(4), Some(10), Some(20), Some(25)], "{p}");
}

#[test]
fn semantic_checks() {
    let text = r#"
[xmpp]
domain = "gw example com"
reconnect_backoff_initial = "2m"
reconnect_backoff_max = "1m"

[[sip.trunks]]
name = "a"
host = "h"
auth = "registration"

[[sip.trunks]]
name = "a"
host = ""

[[routing.routes]]
prefix = "+1"
trunks = []

[[routing.users]]
jid = "example.org"

[media]
port_min = 20000
port_max = 20000
public_ipv4 = "0.0.0.0"
"#;
    let p = problems(text);
    let mut found = keys(&p);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "media.port_max",
            "media.public_ipv4",
            "routing.routes[0].trunks",
            "routing.users[0].jid",
            "sip.trunks[0].password",
            "sip.trunks[0].username",
            "sip.trunks[1].host",
            "sip.trunks[1].name",
            "xmpp.domain",
            "xmpp.reconnect_backoff_max",
            "xmpp.secret",
        ],
        "{p}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let p = problems("[xmpp]\ndomain = \"gw.example.com\nsecret = 1\n");
    assert_eq!(p.problems.len(), 1, "{p}");
    assert_eq!(p.problems[0].line, Some(2), "{p}");
    assert!(p.problems[0].message.starts_with("TOML syntax"), "{p}");
}

#[test]
fn debug_output_redacts_secrets() {
    let config = Config::parse(VALID, Path::new("test.toml"), Vec::new()).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("component-secret"), "{shown}");
    assert!(!shown.contains("trunk-password"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jsg-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check_config_with_env(file: &Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jingle-sip-gateway"))
        .arg("--check-config")
        .arg(file)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn check_config(file: &Path) -> std::process::Output {
    check_config_with_env(file, &[])
}

#[test]
fn check_config_prints_one_line_per_problem_and_fails() {
    let text = VALID
        .replace(
            "secret = \"component-secret\"",
            "secret = \"component-secret\"\nport = \"x\"",
        )
        .replace("[routing]", "[routing]\ncolour = \"red\"")
        .replace("trunks = [\"carrier\"]", "trunks = [\"nope\"]");
    let file = TempFile::new("three.toml", &text);
    let out = check_config(&file.0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let name = file.0.display().to_string();
    for (line, key) in
        lines
            .iter()
            .zip(["xmpp.port", "routing.colour", "routing.routes[0].trunks[0]"])
    {
        assert!(line.starts_with(&name), "{line}");
        assert!(line.contains(key), "{line} should name {key}");
    }
}

#[test]
fn check_config_accepts_a_valid_file() {
    let file = TempFile::new("valid.toml", VALID);
    let out = check_config(&file.0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(!stdout.contains("component-secret"), "{stdout}");
}

#[test]
fn missing_file_is_an_error_on_stderr() {
    let out = check_config(Path::new("/nonexistent/gateway.toml"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("Error: cannot read configuration file /nonexistent/gateway.toml"),
        "{stderr}"
    );
}

#[test]
fn check_config_applies_the_process_environment() {
    let file = TempFile::new("env.toml", VALID);
    let out = check_config_with_env(&file.0, &[("JSG__XMPP__PORT", "not-a-port")]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("xmpp.port (from environment variable JSG__XMPP__PORT)"),
        "{stdout}"
    );

    let out = check_config_with_env(&file.0, &[("JSG__XMPP__PORT", "5348")]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("via localhost:5348"), "{stdout}");
}

// ---- The keys the routing and bridge code needed: one test per key. ----

/// `VALID` with `extra` inserted under the `[section]` header (created at the end when
/// `VALID` has no such header).
fn with(section: &str, extra: &str) -> String {
    let header = format!("[{section}]\n");
    if VALID.contains(&header) {
        VALID.replacen(&header, &format!("{header}{extra}\n"), 1)
    } else {
        format!("{VALID}\n{header}{extra}\n")
    }
}

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("test.toml"), Vec::new())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn allow_everyone_defaults_to_false_and_opens_the_router() {
    let bob: jid::BareJid = "bob@elsewhere.example".parse().unwrap();
    let closed = parse(VALID);
    assert!(!closed.routing.allow_everyone);
    assert!(closed.summary().contains("1 allowed caller(s)"));

    let open = parse(&with("routing", "allow_everyone = true"));
    assert!(open.routing.allow_everyone);
    assert!(
        open.summary().contains("EVERY JID may call out"),
        "{}",
        open.summary()
    );
    // Router::from_config honours it: closed by default, open when set.
    let router = gateway::routing::Router::from_config(&closed);
    assert!(router.authorize_outbound(&bob).is_err());
    let router = gateway::routing::Router::from_config(&open);
    assert!(router.authorize_outbound(&bob).is_ok());

    let p = problems(&with("routing", "allow_everyone = \"yes\""));
    assert_eq!(keys(&p), ["routing.allow_everyone"], "{p}");
}

#[test]
fn max_calls_per_user_defaults_to_4_and_0_means_no_limit() {
    let alice: jid::BareJid = "alice@example.org".parse().unwrap();
    let bob: jid::BareJid = "bob@example.org".parse().unwrap();

    let config = parse(VALID);
    assert_eq!(config.calls.max_calls_per_user, 4);
    assert_eq!(config.calls.max_per_user(), Some(4));

    let config = parse(&with("calls", "max_calls = 3\nmax_calls_per_user = 2"));
    assert_eq!(config.calls.max_per_user(), Some(2));
    let slots = config.call_slots();
    let _a1 = slots.try_acquire(&alice).unwrap();
    let _a2 = slots.try_acquire(&alice).unwrap();
    assert!(slots.try_acquire(&alice).is_err(), "third call of alice");
    let _b1 = slots.try_acquire(&bob).unwrap();
    assert!(slots.try_acquire(&bob).is_err(), "gateway full at 3");

    let config = parse(&with("calls", "max_calls = 3\nmax_calls_per_user = 0"));
    assert_eq!(config.calls.max_per_user(), None);
    let slots = config.calls.call_slots();
    let held: Vec<_> = (0..3).map(|_| slots.try_acquire(&alice).unwrap()).collect();
    assert_eq!(slots.in_use_by(&alice), 3);
    assert!(slots.try_acquire(&alice).is_err(), "only max_calls limits");
    drop(held);

    let p = problems(&with("calls", "max_calls_per_user = -1"));
    assert_eq!(keys(&p), ["calls.max_calls_per_user"], "{p}");
}

#[test]
fn prefer_g711_passthrough_defaults_to_true_and_feeds_the_codec_policy() {
    let config = parse(VALID);
    assert!(config.media.prefer_g711_passthrough);
    let policy = config.codec_policy();
    assert!(policy.prefer_g711_passthrough);
    assert!(!policy.allow_unencrypted);

    let config = parse(&with(
        "media",
        "prefer_g711_passthrough = false\nallow_unencrypted_client_media = true",
    ));
    assert_eq!(
        config.media.codec_policy(),
        gateway::bridge::CodecPolicy {
            prefer_g711_passthrough: false,
            allow_unencrypted: true,
        }
    );

    let p = problems(&with("media", "prefer_g711_passthrough = 1"));
    assert_eq!(keys(&p), ["media.prefer_g711_passthrough"], "{p}");
}

#[test]
fn national_plan_is_optional_and_normalizes_inbound_numbers() {
    let config = parse(VALID);
    assert!(config.routing.national_plan.is_none());
    assert_eq!(config.routing.national_plan(), None);

    let nanp = with(
        "routing.national_plan",
        "country_code = \"1\"\ntrunk_prefix = \"1\"\nnational_number_length = 10",
    );
    let config = parse(&nanp);
    assert_eq!(
        config.routing.national_plan(),
        Some(gateway::routing::NationalPlan::nanp())
    );
    // What Router::from_config must do with it (routing.rs wires it).
    let mut router = gateway::routing::Router::from_config(&config);
    router.national_plan(config.routing.national_plan());
    for national in ["5551234567", "15551234567"] {
        assert_eq!(
            router
                .normalize_inbound("carrier", national)
                .unwrap()
                .as_str(),
            "+15551234567",
            "{national}"
        );
    }

    // Germany: trunk prefix 0, variable length; trunk_prefix defaults to none.
    let de = parse(&with(
        "routing.national_plan",
        "country_code = \"49\"\ntrunk_prefix = \"0\"",
    ));
    let plan = de.routing.national_plan().unwrap();
    assert_eq!(plan.national_len, None);
    let mut router = gateway::routing::Router::from_config(&de);
    router.national_plan(Some(plan));
    assert_eq!(
        router
            .normalize_inbound("carrier", "030123456")
            .unwrap()
            .as_str(),
        "+4930123456"
    );
    let only_length = parse(&with(
        "routing.national_plan",
        "country_code = \"44\"\nnational_number_length = 10",
    ));
    assert_eq!(
        only_length.routing.national_plan.unwrap().trunk_prefix,
        "",
        "trunk_prefix defaults to none"
    );
}

#[test]
fn national_plan_problems_name_their_keys() {
    let cases: [(&str, &[&str]); 7] = [
        (
            "trunk_prefix = \"0\"",
            &["routing.national_plan.country_code"],
        ),
        (
            "country_code = \"+1\"\ntrunk_prefix = \"1\"",
            &["routing.national_plan.country_code"],
        ),
        (
            "country_code = \"049\"\ntrunk_prefix = \"0\"",
            &["routing.national_plan.country_code"],
        ),
        (
            "country_code = \"1\"\ntrunk_prefix = \"+1\"",
            &["routing.national_plan.trunk_prefix"],
        ),
        (
            "country_code = \"1\"",
            &["routing.national_plan.trunk_prefix"],
        ),
        (
            "country_code = \"49\"\nnational_number_length = 14",
            &["routing.national_plan.national_number_length"],
        ),
        (
            "country_code = \"1\"\ntrunk_prefix = \"1\"\nnational_number_length = 0\nextra = 1",
            &[
                "routing.national_plan.extra",
                "routing.national_plan.national_number_length",
            ],
        ),
    ];
    for (body, expected) in cases {
        let p = problems(&with("routing.national_plan", body));
        let mut found = keys(&p);
        found.sort_unstable();
        assert_eq!(found, expected, "{body}:\n{p}");
    }
    let p = problems(&with(
        "routing.national_plan",
        "country_code = 1\ntrunk_prefix = \"1\"",
    ));
    assert_eq!(p.problems.len(), 1, "{p}");
    let shown = p.problems[0].to_string();
    assert!(
        shown.starts_with("test.toml:26: routing.national_plan.country_code: "),
        "{shown}"
    );
}

#[test]
fn early_media_defaults_to_ringback_and_rejects_unknown_values() {
    use gateway::config::EarlyMedia;
    assert_eq!(parse(VALID).calls.early_media, EarlyMedia::Ringback);
    let config = parse(&with("calls", "early_media = \"accept\""));
    assert_eq!(config.calls.early_media, EarlyMedia::Accept);
    let config = parse(&with("calls", "early_media = \"ringback\""));
    assert_eq!(config.calls.early_media, EarlyMedia::Ringback);

    let text = format!("{VALID}\n[calls]\nearly_media = \"play\"\n");
    let p = problems(&text);
    assert_eq!(keys(&p), ["calls.early_media"], "{p}");
    let line = text
        .lines()
        .position(|l| l.starts_with("early_media"))
        .unwrap()
        + 1;
    assert_eq!(p.problems[0].line, Some(line), "{p}");
    let shown = p.problems[0].to_string();
    assert!(
        shown.starts_with(&format!("test.toml:{line}: calls.early_media: ")),
        "{shown}"
    );
    assert!(
        shown.contains("ringback") && shown.contains("accept"),
        "names the accepted values: {shown}"
    );
    let p = problems(&with("calls", "early_media = true"));
    assert_eq!(keys(&p), ["calls.early_media"], "{p}");
}

#[test]
fn outbound_ring_timeout_defaults_to_60s_and_must_be_positive() {
    assert_eq!(parse(VALID).calls.outbound_ring_timeout.as_secs(), 60);
    let config = parse(&with("calls", "outbound_ring_timeout = \"90s\""));
    assert_eq!(config.calls.outbound_ring_timeout.as_secs(), 90);
    let p = problems(&with("calls", "outbound_ring_timeout = \"0s\""));
    assert_eq!(keys(&p), ["calls.outbound_ring_timeout"], "{p}");
    assert!(p.problems[0].message.contains("longer than 0"), "{p}");
    let p = problems(&with("calls", "outbound_ring_timeout = 60"));
    assert_eq!(keys(&p), ["calls.outbound_ring_timeout"], "{p}");
}

#[test]
fn redact_numbers_defaults_to_true_and_quiets_the_sip_stack() {
    let config = parse(VALID);
    assert!(config.log.redact_numbers);
    assert_eq!(config.log.directives("info"), "info,rsipstack=warn");
    assert_eq!(
        config.log.directives("debug,rsipstack=info"),
        "debug,rsipstack=info",
        "a level that names rsipstack is kept"
    );
    let config = parse(&with("log", "redact_numbers = false"));
    assert!(!config.log.redact_numbers);
    assert_eq!(config.log.directives("info"), "info");
    let p = problems(&with("log", "redact_numbers = \"no\""));
    assert_eq!(keys(&p), ["log.redact_numbers"], "{p}");
}

#[test]
fn jitter_buffer_bounds_default_to_20_60_ms_and_are_checked() {
    let config = parse(VALID);
    assert_eq!(config.media.jitter_buffer_max.as_millis(), 60);
    assert_eq!(config.media.jitter_buffer_min.as_millis(), 20);
    let config = parse(&with(
        "media",
        "jitter_buffer_max = \"120ms\"\njitter_buffer_min = \"40ms\"",
    ));
    assert_eq!(config.media.jitter_buffer_max.as_millis(), 120);
    assert_eq!(config.media.jitter_buffer_min.as_millis(), 40);
    let p = problems(&with("media", "jitter_buffer_max = \"500ms\""));
    assert_eq!(keys(&p), ["media.jitter_buffer_max"], "{p}");
    assert!(p.problems[0].message.contains("200ms"), "{p}");
    let p = problems(&with("media", "jitter_buffer_min = \"80ms\""));
    assert_eq!(keys(&p), ["media.jitter_buffer_min"], "{p}");
    let p = problems(&with("media", "jitter_buffer_min = \"0s\""));
    assert_eq!(keys(&p), ["media.jitter_buffer_min"], "{p}");
}
