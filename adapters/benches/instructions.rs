//! A fixed amount of `normalize` work, for counting instructions with callgrind, which (unlike
//! time) does not depend on what else the machine is doing.
//!
//! `instructions <store> <passes>` runs `process` over every accepted golden case of the store,
//! `passes` times. Instructions per notification are the difference between two runs, e.g. 200
//! and 0 passes (which leaves out loading the cases), divided by 200 × the number of cases, which
//! this prints:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <binary> autodesk 200
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <binary> autodesk 0
//! ```
//!
//! Without arguments (as `cargo bench` runs it) it does one pass over each store.

use std::hint::black_box;

use storehook_adapters::{Store, process};

mod cases;

use cases::accepted_cases;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (stores, passes): (Vec<Store>, usize) = match args.as_slice() {
        [store, passes] => match (store.parse(), passes.parse()) {
            (Ok(store), Ok(passes)) => (vec![store], passes),
            _ => {
                eprintln!("usage: instructions <store> <passes>");
                std::process::exit(2);
            }
        },
        _ => (Store::ALL.to_vec(), 1),
    };
    for store in stores {
        let cases = accepted_cases(store);
        for _ in 0..passes {
            for case in &cases {
                let events = process(&case.config, black_box(&case.body), &case.context());
                black_box(events.ok());
            }
        }
        println!("{store}: {} cases, {passes} passes", cases.len());
    }
}
