//! `storehook normalize`: the operator's dry run of an adapter on one raw body.

use std::io::{Read, Write};
use std::process::ExitCode;

use chrono::Utc;
use storehook_adapters::{Context, SourceConfig, autodesk, rustore};

use crate::cli::{CommonArgs, NormalizeArgs, NormalizeStore};

/// Run `storehook normalize`; see [`crate::cli`] for the exit codes.
pub fn run(args: NormalizeArgs) -> ExitCode {
    let (config, common) = match source_config(args.store) {
        Ok(parsed) => parsed,
        Err(message) => return usage_error(&message),
    };
    let body = match read_body(&common) {
        Ok(body) => body,
        Err(message) => return usage_error(&message),
    };
    let ctx = Context {
        tenant: &common.tenant,
        source: &common.source,
        received_at: common.received_at.unwrap_or_else(Utc::now),
    };
    match storehook_adapters::process(&config, &body, &ctx) {
        Ok(events) => {
            let mut out = std::io::stdout().lock();
            for event in &events {
                let mut line = crate::bus::encode_event(event);
                line.push(b'\n');
                if let Err(e) = out.write_all(&line) {
                    return usage_error(&format!("cannot write to standard output: {e}"));
                }
            }
            ExitCode::SUCCESS
        }
        Err(rejection) => {
            eprintln!("error: {rejection}");
            ExitCode::from(2)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// Build the adapter configuration from the flags, exactly as the gateway builds it from a source.
fn source_config(store: NormalizeStore) -> Result<(SourceConfig, CommonArgs), String> {
    match store {
        NormalizeStore::RuStore(args) => {
            let key =
                rustore::AesKey::parse(&args.key).map_err(|e| format!("--key: {}", e.message))?;
            let previous_key = args
                .previous_key
                .as_deref()
                .map(rustore::AesKey::parse)
                .transpose()
                .map_err(|e| format!("--previous-key: {}", e.message))?;
            let config = rustore::Config {
                key,
                previous_key,
                app_id: args.app_id,
            };
            Ok((SourceConfig::RuStore(config), args.common))
        }
        NormalizeStore::Autodesk(args) => {
            let config = autodesk::Config {
                receiver_emails: args.receiver_emails,
                receiver_ids: args.receiver_ids,
                app_ids: args.app_ids,
            };
            Ok((SourceConfig::Autodesk(config), args.common))
        }
    }
}

fn read_body(common: &CommonArgs) -> Result<Vec<u8>, String> {
    match common.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        _ => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(body)
        }
    }
}
