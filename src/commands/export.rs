//! `export`: writes the stored messages (optionally filtered) to standard output as NDJSON, one
//! message per line with the contract's field names, streaming in listing order.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use super::{database, fail, progress};
use crate::domain::MessageFilter;

const SLICE: usize = 5_000;

/// `pairs` are the filters as `(name, value)`, validated like `/messages` parameters.
pub fn run(pairs: &[(&str, String)]) -> ExitCode {
    let filter = match MessageFilter::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))) {
        Ok(filter) => filter,
        Err(errors) => {
            for error in errors {
                eprintln!("webhook-processor: --{}: {}", error.loc.0[1], error.msg);
            }
            return ExitCode::from(2);
        }
    };
    let storage = match database::open_existing() {
        Ok(storage) => storage,
        Err(error) => return fail(error),
    };
    let mut reader = storage.reader();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let bar = progress::rows("export", None);
    let mut after = None;
    let mut line = Vec::with_capacity(512);
    loop {
        let slice = match reader.scan(&filter, after.as_ref(), SLICE) {
            Ok(slice) => slice,
            Err(error) => return fail(format!("export failed: {error}")),
        };
        for message in &slice.messages {
            line.clear();
            message.write_ndjson(&mut line);
            if let Err(error) = out.write_all(&line) {
                return finish_on_write_error(error);
            }
        }
        bar.inc(slice.messages.len() as u64);
        match slice.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if let Err(error) = out.flush() {
        return finish_on_write_error(error);
    }
    bar.finish();
    ExitCode::SUCCESS
}

/// A reader that stopped early (`export | head`) is not a failure.
fn finish_on_write_error(error: std::io::Error) -> ExitCode {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        fail(format!("cannot write the export: {error}"))
    }
}
