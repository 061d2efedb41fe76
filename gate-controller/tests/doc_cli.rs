//! `gatectl doc read` argument validation (no pcscd needed: every case fails before any
//! reader is touched). The live reads through pcscd + vpcd are in `sim/tests/card_vpcd.rs`.

use std::process::Command;

fn gatectl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatectl"))
        .args(args)
        .output()
        .expect("run gatectl")
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["doc", "read", "--mrz-key", "L898902C,690806,940623"],
            "--reader",
        ),
        (&["doc", "read", "--reader", "X"], "--mrz-key"),
        (
            &[
                "doc",
                "read",
                "--reader",
                "X",
                "--mrz-key",
                "L898902C,690806,940623",
                "--can",
                "123456",
            ],
            "cannot be used with",
        ),
        (
            &[
                "doc",
                "read",
                "--reader",
                "X",
                "--mrz-key",
                "L898902C,690806",
            ],
            "DOCNO,YYMMDD,YYMMDD",
        ),
        (
            &[
                "doc",
                "read",
                "--reader",
                "X",
                "--mrz-key",
                "L898902C,691306,940623",
            ],
            "--mrz-key",
        ),
        (
            &[
                "doc",
                "read",
                "--reader",
                "X",
                "--mrz-key",
                "L89-8902C,690806,940623",
            ],
            "--mrz-key",
        ),
        (&["doc", "read", "--reader", "X", "--can", "12345"], "CAN"),
        (&["doc", "read", "--reader", "X", "--can", "12345a"], "CAN"),
        (
            &[
                "doc", "read", "--reader", "X", "--can", "123456", "--wait", "1e9",
            ],
            "--wait",
        ),
        (
            &[
                "doc", "read", "--reader", "X", "--can", "123456", "--csca", &empty,
            ],
            "--csca",
        ),
        (
            &[
                "doc",
                "read",
                "--reader",
                "X",
                "--can",
                "123456",
                "--csca",
                "/nonexistent/csca",
            ],
            "--csca",
        ),
    ];
    for (args, needle) in cases {
        let out = gatectl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_documents_the_command() {
    let out = gatectl(&["doc", "read", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--reader", "--mrz-key", "--can", "--csca", "--json"] {
        assert!(help.contains(flag), "{flag}");
    }
}
