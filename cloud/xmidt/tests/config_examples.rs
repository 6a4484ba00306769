//! The annotated example configurations in config/ stay valid: every key in them is one the
//! services know, with a value of the right type.

use std::process::Command;

#[test]
fn every_example_config_is_accepted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("config/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = Command::new(env!("CARGO_BIN_EXE_xmidt"))
                .arg("check-config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "found {checked} example configs");
}

#[test]
fn a_typo_is_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "scytale:\n  fanout:\n    endpoint: []\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("endpoint"));
}

#[test]
fn service_help_shows_the_annotated_config() {
    for service in ["talaria", "petasos", "scytale", "mimisbrunnr"] {
        let out = Command::new(env!("CARGO_BIN_EXE_xmidt"))
            .args([service, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains(&format!("{service}:\n  address:")),
            "{service} --help lists its keys"
        );
        assert!(
            help.contains(&format!("XMIDT_{}__", service.to_uppercase())),
            "{service} --help names the env overrides"
        );
    }
}
