//! Environment overrides (`JSG__SECTION__KEY`), given to the loader as an explicit list
//! so the tests never touch the process environment.

use std::path::Path;

use gateway::config::{Config, Error, Problems};

const BASE: &str = r#"
[xmpp]
domain = "gw.example.com"
secret = "from-file"

[[sip.trunks]]
name = "carrier"
host = "sip.example.net"
"#;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(vars: &[(&str, &str)]) -> Result<Config, Error> {
    Config::parse(BASE, Path::new("base.toml"), env(vars))
}

fn problems(vars: &[(&str, &str)]) -> Problems {
    match load(vars) {
        Err(Error::Invalid(p)) => p,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("{vars:?} accepted"),
    }
}

#[test]
fn secret_is_overridden_and_stays_a_string() {
    let config = load(&[("JSG__XMPP__SECRET", "12345")]).unwrap();
    assert_eq!(config.xmpp.secret.expose(), "12345");
    assert_eq!(
        load(&[]).unwrap().xmpp.secret.expose(),
        "from-file",
        "without the variable the file's value stays"
    );
}

#[test]
fn typed_values_are_read_from_their_text() {
    let config = load(&[
        ("JSG__XMPP__PORT", "5348"),
        ("JSG__XMPP__PING_INTERVAL", "15s"),
        ("JSG__MEDIA__ALLOW_UNENCRYPTED_CLIENT_MEDIA", "true"),
        (
            "JSG__ROUTING__ALLOWED_CALLERS",
            r#"["alice@example.org", "example.net"]"#,
        ),
        ("JSG__LOG__LEVEL", "debug"),
    ])
    .unwrap();
    assert_eq!(config.xmpp.port, 5348);
    assert_eq!(config.xmpp.ping_interval.as_secs(), 15);
    assert!(config.media.allow_unencrypted_client_media);
    assert_eq!(config.routing.allowed_callers.len(), 2);
    assert_eq!(config.log.level, "debug");
}

#[test]
fn array_of_tables_element_by_index() {
    let config = load(&[("JSG__SIP__TRUNKS__0__PASSWORD", "s3cret")]).unwrap();
    let trunk = &config.sip.trunks[0];
    assert_eq!(trunk.password.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(trunk.name, "carrier");
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let config = load(&[
        ("PATH", "/usr/bin"),
        ("JSG_XMPP_PORT", "1"),
        ("XJSG__XMPP__PORT", "1"),
    ])
    .unwrap();
    assert_eq!(config.xmpp.port, 5347);
}

#[test]
fn unknown_key_from_the_environment_names_the_variable() {
    let p = problems(&[("JSG__XMPP__SECRT", "x")]);
    assert_eq!(p.problems.len(), 1, "{p}");
    let problem = &p.problems[0];
    assert_eq!(problem.key, "xmpp.secrt");
    assert_eq!(problem.env_var.as_deref(), Some("JSG__XMPP__SECRT"));
    assert!(
        problem.to_string().contains("JSG__XMPP__SECRT"),
        "{problem}"
    );
    assert!(problem.to_string().contains("base.toml"), "{problem}");
}

#[test]
fn mistyped_value_from_the_environment_names_key_and_variable() {
    let p = problems(&[("JSG__XMPP__PORT", "five"), ("JSG__CALLS__MAX_CALLS", "-3")]);
    let keys: Vec<&str> = p.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{p}");
    assert!(
        keys.contains(&"xmpp.port") && keys.contains(&"calls.max_calls"),
        "{p}"
    );
    for problem in &p.problems {
        assert!(problem.env_var.is_some(), "{problem}");
        assert_eq!(
            problem.line, None,
            "a value from the environment has no line"
        );
    }
}

#[test]
fn a_variable_that_names_no_key_is_reported() {
    let p = problems(&[("JSG__", "x")]);
    assert!(p.to_string().contains("JSG__"), "{p}");
    let p = problems(&[("JSG__XMPP__DOMAIN__SUB", "x")]);
    assert!(
        p.problems[0].to_string().contains("JSG__XMPP__DOMAIN__SUB"),
        "{p}"
    );
}

#[test]
fn environment_supplies_required_keys_missing_from_the_file() {
    let config = Config::parse(
        "[xmpp]\ndomain = \"gw.example.com\"\n",
        Path::new("nosecret.toml"),
        env(&[("JSG__XMPP__SECRET", "env-secret")]),
    )
    .unwrap();
    assert_eq!(config.xmpp.secret.expose(), "env-secret");
}

#[test]
fn new_routing_calls_and_media_keys_are_overridden() {
    let config = load(&[
        ("JSG__ROUTING__ALLOW_EVERYONE", "true"),
        ("JSG__CALLS__MAX_CALLS_PER_USER", "0"),
        ("JSG__MEDIA__PREFER_G711_PASSTHROUGH", "false"),
        ("JSG__ROUTING__NATIONAL_PLAN__COUNTRY_CODE", "49"),
        ("JSG__ROUTING__NATIONAL_PLAN__TRUNK_PREFIX", "0"),
    ])
    .unwrap();
    assert!(config.routing.allow_everyone);
    assert_eq!(config.calls.max_per_user(), None);
    assert!(!config.media.prefer_g711_passthrough);
    let plan = config.routing.national_plan().unwrap();
    assert_eq!(
        (plan.country_code.as_str(), plan.trunk_prefix.as_str()),
        ("49", "0"),
        "digits from the environment stay strings"
    );
    assert_eq!(plan.national_len, None);

    let config = load(&[
        ("JSG__CALLS__EARLY_MEDIA", "accept"),
        ("JSG__CALLS__OUTBOUND_RING_TIMEOUT", "20s"),
        ("JSG__LOG__REDACT_NUMBERS", "false"),
    ])
    .unwrap();
    assert_eq!(
        config.calls.early_media,
        gateway::config::EarlyMedia::Accept
    );
    assert_eq!(config.calls.outbound_ring_timeout.as_secs(), 20);
    assert!(!config.log.redact_numbers);
    let p = problems(&[("JSG__CALLS__EARLY_MEDIA", "sometimes")]);
    let early = p
        .problems
        .iter()
        .find(|p| p.key == "calls.early_media")
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(early.env_var.as_deref(), Some("JSG__CALLS__EARLY_MEDIA"));

    let p = problems(&[("JSG__ROUTING__NATIONAL_PLAN__NATIONAL_NUMBER_LENGTH", "ten")]);
    let keys: Vec<&str> = p.problems.iter().map(|p| p.key.as_str()).collect();
    assert!(
        keys.contains(&"routing.national_plan.national_number_length"),
        "{p}"
    );
    let var = p
        .problems
        .iter()
        .find(|p| p.key == "routing.national_plan.national_number_length")
        .and_then(|p| p.env_var.clone());
    assert_eq!(
        var.as_deref(),
        Some("JSG__ROUTING__NATIONAL_PLAN__NATIONAL_NUMBER_LENGTH")
    );
}
