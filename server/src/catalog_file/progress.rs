//! [`Progress`]: how an import or export shows how far it has come. On a
//! terminal, an indicatif bar on stderr; otherwise (a pipe, a log file, a
//! test) a plain line at every tenth of the way, so the output of a script
//! stays short and the same from run to run; or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where an import or export reports its progress.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hidden,
    Bar,
    Lines,
}

/// What a stage counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    Bytes,
    Rows,
    Products,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Rows => "rows",
            Unit::Products => "products",
        }
    }
}

/// Plain lines for a stage without a known total come every this many.
const LINE_EVERY_COUNT: u64 = 10_000;

impl Progress {
    /// Reports nothing (the server's first start uses this).
    pub fn hidden() -> Progress {
        Progress { kind: Kind::Hidden }
    }

    /// A progress bar on stderr when it is a terminal, plain lines on
    /// stderr otherwise.
    pub fn stderr() -> Progress {
        let kind = if std::io::stderr().is_terminal() {
            Kind::Bar
        } else {
            Kind::Lines
        };
        Progress { kind }
    }

    /// Starts a stage named `label` that counts `unit`s up to `total`.
    pub(super) fn stage(&self, label: &'static str, total: Option<u64>, unit: Unit) -> Stage {
        let bar = (self.kind == Kind::Bar).then(|| {
            let template = match (total, unit) {
                (Some(_), Unit::Bytes) => {
                    "{msg:>9} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({eta})"
                }
                (Some(_), _) => "{msg:>9} [{bar:40}] {human_pos}/{human_len} {prefix} ({eta})",
                (None, _) => "{msg:>9} {spinner} {human_pos} {prefix}",
            };
            let style = ProgressStyle::with_template(template)
                .expect("the templates are valid")
                .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
                .with_style(style)
                .with_message(label)
                .with_prefix(unit.name());
            bar.tick();
            bar
        });
        Stage {
            label,
            total,
            unit,
            bar,
            lines: self.kind == Kind::Lines,
            done: 0,
            next_line: 1,
        }
    }
}

/// One stage of an import or export (checking the file, writing it...).
pub(super) struct Stage {
    label: &'static str,
    total: Option<u64>,
    unit: Unit,
    bar: Option<ProgressBar>,
    lines: bool,
    done: u64,
    /// With plain lines: the next tenth (or multiple of
    /// [`LINE_EVERY_COUNT`]) at which a line is printed.
    next_line: u64,
}

impl Stage {
    /// `done` units of the stage are done.
    pub(super) fn set(&mut self, done: u64) {
        self.done = done;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
        if !self.lines {
            return;
        }
        // One line per update at most, for the furthest tenth (or count) reached.
        // The end is said by `finish`.
        let reached = match self.total {
            Some(total) if done >= total => return,
            Some(total) => done.saturating_mul(10) / total,
            _ => done / LINE_EVERY_COUNT,
        };
        if reached < self.next_line {
            return;
        }
        self.next_line = reached + 1;
        match self.total {
            Some(total) if total > 0 => eprintln!(
                "{}: {}% ({done} of {total} {})",
                self.label,
                reached * 10,
                self.unit.name()
            ),
            _ => eprintln!("{}: {done} {}", self.label, self.unit.name()),
        }
    }

    /// The stage is over.
    pub(super) fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        if self.lines {
            eprintln!("{}: done, {} {}", self.label, self.done, self.unit.name());
        }
    }
}
