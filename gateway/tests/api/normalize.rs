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
    // A usage error exits before reading standard input: a broken pipe here is expected.
    let _ = child.stdin.take().expect("stdin is piped").write_all(stdin);
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

/// Every golden case of the adapters, through the CLI: accepted cases print exactly the expected
/// events (one JSON line each), rejected ones exit 2 with `error: <category>: <message>`.
#[test]
fn normalize_prints_the_golden_events_of_every_adapter_case() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters/testdata");
    let mut checked = 0;
    for store in ["rustore", "autodesk"] {
        let Ok(cases) = std::fs::read_dir(testdata.join(store)) else {
            continue;
        };
        for case in cases.flatten() {
            let dir = case.path();
            let (Ok(case_json), Ok(expected), Ok(body)) = (
                std::fs::read_to_string(dir.join("case.json")),
                std::fs::read_to_string(dir.join("expected.json")),
                std::fs::read(dir.join("body")),
            ) else {
                continue;
            };
            let case_json: serde_json::Value =
                serde_json::from_str(&case_json).expect("case.json is JSON");
            let expected: serde_json::Value =
                serde_json::from_str(&expected).expect("expected.json is JSON");
            let mut args = vec!["normalize".to_owned(), store.to_owned()];
            for (field, flag) in [
                ("key", "--key"),
                ("previous_key", "--previous-key"),
                ("app_id", "--app-id"),
                ("receiver_emails", "--receiver-email"),
                ("receiver_ids", "--receiver-id"),
                ("app_ids", "--app-id"),
            ] {
                let values = match &case_json["config"][field] {
                    serde_json::Value::String(value) => vec![value.clone()],
                    serde_json::Value::Array(values) => values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                for value in values {
                    args.push(flag.to_owned());
                    args.push(value);
                }
            }
            for field in ["tenant", "source", "received_at"] {
                if let Some(value) = case_json[field].as_str() {
                    args.push(format!("--{}", field.replace('_', "-")));
                    args.push(value.to_owned());
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = storehook(&args, &body);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if let Some(events) = expected["events"].as_array() {
                assert_eq!(output.status.code(), Some(0), "{}: {stderr}", dir.display());
                let printed: Vec<serde_json::Value> = stdout
                    .lines()
                    .map(|line| serde_json::from_str(line).expect("each line is one JSON event"))
                    .collect();
                assert_eq!(&printed, events, "{}", dir.display());
            } else {
                let error = &expected["error"];
                assert_eq!(output.status.code(), Some(2), "{}: {stderr}", dir.display());
                assert!(stdout.is_empty(), "{}", dir.display());
                assert_eq!(
                    stderr,
                    format!(
                        "error: {}: {}\n",
                        error["category"].as_str().unwrap_or_default(),
                        error["message"].as_str().unwrap_or_default()
                    ),
                    "{}",
                    dir.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no golden cases found under {}",
        testdata.display()
    );
}
