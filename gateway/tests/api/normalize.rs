//! `storehook normalize`: exit codes and output of the operator's dry run.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn storehook(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storehook"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the storehook binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("stdin accepts the body");
    child.wait_with_output().expect("storehook exits")
}

#[test]
fn rejected_notification_exits_2_with_one_error_line() {
    let output = storehook(
        &[
            "normalize",
            "autodesk",
            "--receiver-email",
            "seller@example.com",
        ],
        b"\xff\xfe not a form",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(
        stderr.starts_with("error: malformed: ") || stderr.starts_with("error: unauthenticated: "),
        "stderr: {stderr}"
    );
}

#[test]
fn usage_error_exits_1() {
    let output = storehook(&["normalize", "rustore"], b"{}");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--key"));
}

#[test]
fn unreadable_file_exits_1() {
    let output = storehook(
        &["normalize", "autodesk", "/nonexistent/storehook/body"],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: cannot read "));
}
