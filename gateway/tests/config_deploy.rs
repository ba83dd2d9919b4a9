//! Every configuration file in `deploy/` parses, and an unknown key injected at the top
//! level or in any of its sections is rejected with an error that names the key, its
//! section path, the file and the line (STYLE.md R9, hickory's
//! `test_reject_unknown_fields`).

use std::path::{Path, PathBuf};

use gateway::config::{Config, Error};

fn deploy_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn deploy_holds_the_example_and_testbed_configs() {
    let names: Vec<String> = deploy_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"gateway.toml".to_owned()), "{names:?}");
    assert!(names.contains(&"testbed.toml".to_owned()), "{names:?}");
}

#[test]
fn every_deploy_config_parses() {
    for file in deploy_files() {
        if let Err(e) = Config::load(&file, no_env()) {
            panic!("{} does not load:\n{e}", file.display());
        }
    }
}

#[test]
fn testbed_config_stays_on_loopback() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/testbed.toml");
    let config = Config::load(&file, no_env()).unwrap();
    assert_eq!(config.xmpp.server, "127.0.0.1");
    assert_eq!(config.xmpp.domain, "gw.localhost");
    assert!(config.sip.bind_address.is_loopback());
    assert!(config.media.bind_addresses.iter().all(|a| a.is_loopback()));
    for trunk in &config.sip.trunks {
        assert_eq!(trunk.host, "127.0.0.1", "trunk {}", trunk.name);
    }
}

/// The table headers of a TOML text: (line index, section path as the loader prints it).
fn sections(text: &str) -> Vec<(usize, String)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let name = name.trim().to_owned();
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((name.clone(), 0));
                    0
                }
            };
            out.push((i, format!("{name}[{n}]")));
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((i, name.trim().to_owned()));
        }
    }
    out
}

/// Inserts `injected_unknown_key = 1` after line `after` (or at the top when `None`).
fn inject(text: &str, after: Option<usize>) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let at = after.map_or(0, |i| i + 1);
    lines.insert(at, "injected_unknown_key = 1");
    lines.join("\n") + "\n"
}

fn assert_rejected(file: &Path, text: &str, key: &str, line: usize) {
    let err = Config::parse(text, file, no_env()).expect_err(key);
    let Error::Invalid(problems) = err else {
        panic!("{key}: unexpected error {err}");
    };
    assert_eq!(
        problems.problems.len(),
        1,
        "{}: only the injected key is wrong:\n{problems}",
        file.display()
    );
    let p = &problems.problems[0];
    assert_eq!(p.key, key);
    assert_eq!(p.file, file);
    assert_eq!(p.line, Some(line), "{p}");
    let shown = p.to_string();
    assert!(shown.contains(key), "{shown}");
    assert!(shown.contains(&file.display().to_string()), "{shown}");
    assert!(shown.contains("unknown key"), "{shown}");
}

#[test]
fn unknown_key_is_rejected_everywhere_in_every_deploy_config() {
    let mut checked = 0;
    for file in deploy_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_rejected(&file, &inject(&text, None), "injected_unknown_key", 1);
        let sections = sections(&text);
        assert!(!sections.is_empty(), "{} has no sections", file.display());
        for (line, section) in sections {
            let key = format!("{section}.injected_unknown_key");
            // The header is at 0-based `line`; the injected key comes right after it.
            assert_rejected(&file, &inject(&text, Some(line)), &key, line + 2);
            checked += 1;
        }
        // Sections the file leaves out are checked too.
        for section in ["xmpp", "log", "calls", "sip", "routing", "media"] {
            if !text.contains(&format!("[{section}]")) {
                let appended = format!("{text}\n[{section}]\ninjected_unknown_key = 1\n");
                let line = appended.lines().count();
                assert_rejected(
                    &file,
                    &appended,
                    &format!("{section}.injected_unknown_key"),
                    line,
                );
                checked += 1;
            }
        }
    }
    // Optional subsections the files leave out (or only show commented out) are
    // checked too, each with the values it needs to be valid.
    for file in deploy_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (section, body) in [(
            "routing.national_plan",
            "country_code = \"1\"\ntrunk_prefix = \"1\"\nnational_number_length = 10",
        )] {
            if text.lines().any(|l| l.trim() == format!("[{section}]")) {
                continue; // checked above, with the file's own values
            }
            let appended = format!("{text}\n[{section}]\n{body}\ninjected_unknown_key = 1\n");
            let line = appended.lines().count();
            assert_rejected(
                &file,
                &appended,
                &format!("{section}.injected_unknown_key"),
                line,
            );
            checked += 1;
        }
    }
    // gateway.toml alone has 6 sections plus 2 trunks, 2 routes and 1 user.
    assert!(checked >= 11, "only {checked} sections checked");
}
