//! The gateway's log as the reference keeps it (spec operator §1): one JSON object per line in
//! the reference's positional (tslog) shape, in a per-day file where operators look for it,
//! rotated by size and pruned by age; and `logs.tail`, which reads it back by byte cursor.
//!
//! Sans-IO: [`line`] formats and parses lines, [`file`] names the files and decides rotation
//! and pruning, [`tail`] validates `logs.tail` params, plans the byte range to read and builds
//! the answer from the bytes the shell read. The shell (`driver/src/logfile.rs`) does the
//! appends, renames, deletes and reads.

pub mod file;
pub mod line;
pub mod tail;

pub use file::LogTarget;
pub use line::{Level, ParsedLine, Record, format_line, parse_line};
pub use tail::{TailParams, TailPlan, parse_tail_params, plan_tail};
