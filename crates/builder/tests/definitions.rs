//! Definitions: lxc-ci's real ones validate, and each class of bad input gets a located error.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_warren-build");
const ANCHORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/anchors");

fn validate(def: &str, opts: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("validate").arg(def);
    for o in opts {
        c.arg("-o").arg(o);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run warren-build");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn error_of(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn lxc_ci_definitions_validate_with_the_release_lxc_ci_passes() {
    let dir = std::path::Path::new(ANCHORS);
    if !dir.is_dir() {
        eprintln!("skipped: {ANCHORS} is not here (the shared anchors hold lxc-ci's definitions)");
        return;
    }
    for (file, release) in [
        ("lxc-ci-defs/debian.yaml", "bookworm"),
        ("lxc-ci-defs/ubuntu.yaml", "noble"),
        ("lxc-ci-defs/alpine.yaml", "3.20"),
        ("lxc-ci-defs/busybox.yaml", "1.36.1"),
        (
            "distrobuilder-bench/debian-bookworm-minbase.yaml",
            "bookworm",
        ),
    ] {
        let path = dir.join(file);
        let out = validate(
            &path.to_string_lossy(),
            &[&format!("image.release={release}"), "image.variant=cloud"],
            None,
        );
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_shipped_example_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/busybox.yaml");
    let out = validate(example, &[], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const GOOD: &str = "image:\n  distribution: test\n  release: 3.20\nsource:\n  downloader: busybox\npackages:\n  manager: apk\nfiles:\n- generator: dump\n  path: /etc/motd\n  mode: 0600\n";

#[test]
fn scalars_keep_their_text_and_stdin_works() {
    let out = validate("-", &[], Some(&format!("# a comment first\n{GOOD}")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("test 3.20"),
        "release kept as written"
    );
}

#[test]
fn unknown_keys_wrong_types_and_missing_fields_name_file_line_and_column() {
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("  release: 3.20\n", "  release: 3.20\n  relaese: x\n")),
    ));
    assert!(
        e.contains(
            "<stdin>:4:3: image.relaese: unknown key \"relaese\" (did you mean \"release\"?)"
        ),
        "{e}"
    );
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("mode: 0600", "mode: [1]")),
    ));
    assert!(
        e.contains("<stdin>:11:9: files.0.mode: expected a string, found a list"),
        "{e}"
    );
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("mode: 0600", "mode: 0999")),
    ));
    assert!(
        e.contains("files.0.mode: \"0999\" is not an octal file mode"),
        "{e}"
    );
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("  release: 3.20\n", "")),
    ));
    assert!(
        e.contains("<stdin>:1:1: image.release: is missing") && e.contains("-o image.release="),
        "{e}"
    );
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("  distribution: test\n", "")),
    ));
    assert!(e.contains("-o image.distribution="), "{e}");
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("generator: dump", "generator: lxd-agent")),
    ));
    assert!(
        e.contains("files.0.generator") && e.contains("incus-agent"),
        "{e}"
    );
    let e = error_of(&validate("-", &[], Some("image: [\n")));
    assert!(e.starts_with("error: <stdin>:"), "{e}");
    let e = error_of(&validate("/nonexistent/def.yaml", &[], None));
    assert!(
        e.contains("/nonexistent/def.yaml") && e.contains("can't read"),
        "{e}"
    );
}

#[test]
fn overrides_set_any_value_and_bad_ones_name_the_option() {
    let ok = validate(
        "-",
        &[
            "image.release=3.19,image.variant=cloud",
            r"files.0.content=a\,b\=c",
        ],
        Some(GOOD),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("test 3.19"));
    let e = error_of(&validate("-", &["image.nonexistent=1"], Some(GOOD)));
    assert!(
        e.contains("-o image.nonexistent=1: image.nonexistent: unknown key"),
        "{e}"
    );
    let e = error_of(&validate("-", &["source.keys.0=ABC"], Some(GOOD)));
    assert!(
        e.contains("-o source.keys.0=ABC") && e.contains("out of range"),
        "{e}"
    );
    let e = error_of(&validate("-", &["files.9.path=/x"], Some(GOOD)));
    assert!(
        e.contains("index 9 is out of range: the list has 1 entries"),
        "{e}"
    );
    let e = error_of(&validate("-", &["packages.update=maybe"], Some(GOOD)));
    assert!(
        e.contains("-o packages.update=maybe: packages.update: expected true or false"),
        "{e}"
    );
    let e = error_of(&validate("-", &["files=x"], Some(GOOD)));
    assert!(e.contains("sets single values only"), "{e}");
    let e = error_of(&validate("-", &["nokey"], Some(GOOD)));
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = error_of(&validate(
        "-",
        &["source.downloader=sabayon-http"],
        Some(GOOD),
    ));
    assert!(e.contains("does not implement"), "{e}");
    let e = error_of(&validate(
        "-",
        &["source.keys=x"],
        Some(&GOOD.replace("source:\n", "source:\n  keys: [ABCDEF]\n")),
    ));
    assert!(e.contains("sets single values only"), "{e}");
    let e = error_of(&validate(
        "-",
        &[],
        Some(&GOOD.replace("source:\n", "source:\n  keys: [ABCDEF]\n")),
    ));
    assert!(e.contains("source.keys.0") && e.contains("armored"), "{e}");
}
