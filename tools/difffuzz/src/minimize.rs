//! Delta debugging of a failing sequence: drop steps while the finding
//! persists (ddmin), then single commands of multi-command steps, then
//! arguments and script lines, then shrink the remaining arguments.

use crate::fuzz::{Exec, Outcome};
use crate::gen::Step;

#[derive(Clone, Debug)]
pub enum Target {
    /// A difference with this cause.
    Diff(String),
    /// This server crashes.
    Crash(&'static str),
    /// This server hangs.
    Hang(&'static str),
}

pub struct Minimized {
    pub steps: Vec<Step>,
    pub replays: usize,
    /// Whether the unreduced sequence reproduced the finding at all.
    pub reproduced: bool,
    /// The outcome of the final reproduction.
    pub last: Option<Outcome>,
}

struct Ctx<'a, 'b> {
    exec: &'a mut Exec<'b>,
    target: &'a Target,
    replays: usize,
    budget: usize,
    last: Option<Outcome>,
}

impl Ctx<'_, '_> {
    fn test(&mut self, steps: &[Step]) -> bool {
        if self.replays >= self.budget || steps.is_empty() {
            return false;
        }
        self.replays += 1;
        let o = self.exec.run(steps, None);
        let hit = match (&o, self.target) {
            (Outcome::Diff(d), Target::Diff(c)) => &d.cause == c,
            (Outcome::Crash { who, .. }, Target::Crash(w)) => who == w,
            (Outcome::Hang { who, .. }, Target::Hang(w)) => who == w,
            _ => false,
        };
        if hit {
            self.last = Some(o);
        }
        hit
    }
}

fn ddmin(cx: &mut Ctx, mut steps: Vec<Step>) -> Vec<Step> {
    let mut n = 2usize;
    while steps.len() >= 2 && cx.replays < cx.budget {
        let chunk = steps.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < steps.len() {
            let end = (start + chunk).min(steps.len());
            let candidate: Vec<Step> = steps[..start].iter().chain(&steps[end..]).cloned().collect();
            if cx.test(&candidate) {
                steps = candidate;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
            start = end;
        }
        if !reduced {
            if n >= steps.len() {
                break;
            }
            n = (n * 2).min(steps.len());
        }
    }
    steps
}

/// Shorter stand-ins tried for each argument.
const SIMPLER: &[&[u8]] = &[b"", b"0", b"1", b"a"];

pub fn minimize(exec: &mut Exec, steps: Vec<Step>, target: &Target, budget: usize) -> Minimized {
    let mut cx = Ctx { exec, target, replays: 0, budget, last: None };
    if !cx.test(&steps) {
        // One more try: timing-dependent findings sometimes need a second run.
        if !cx.test(&steps) {
            return Minimized { steps, replays: cx.replays, reproduced: false, last: None };
        }
    }
    let mut steps = ddmin(&mut cx, steps);

    // Commands inside multi-command steps.
    let mut si = 0;
    while si < steps.len() {
        let mut ci = 0;
        while steps[si].cmds.len() > 1 && ci < steps[si].cmds.len() {
            let mut candidate = steps.clone();
            candidate[si].cmds.remove(ci);
            if cx.test(&candidate) {
                steps = candidate;
            } else {
                ci += 1;
            }
        }
        si += 1;
    }

    // Arguments: drop, then split script lines, then shrink.
    for si in 0..steps.len() {
        for ci in 0..steps[si].cmds.len() {
            let mut ai = steps[si].cmds[ci].argv.len();
            while ai > 1 {
                ai -= 1;
                let mut candidate = steps.clone();
                candidate[si].cmds[ci].argv.remove(ai);
                if cx.test(&candidate) {
                    steps = candidate;
                    continue;
                }
                let arg = steps[si].cmds[ci].argv[ai].clone();
                if arg.contains(&b'\n') {
                    let lines: Vec<&[u8]> = arg.split(|&c| c == b'\n').collect();
                    let mut keep: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                    let mut li = 0;
                    while li < keep.len() && keep.len() > 1 {
                        let mut trial = keep.clone();
                        trial.remove(li);
                        let mut candidate = steps.clone();
                        candidate[si].cmds[ci].argv[ai] = trial.join(&b'\n');
                        if cx.test(&candidate) {
                            keep = trial;
                            steps = candidate;
                        } else {
                            li += 1;
                        }
                    }
                }
                let arg = steps[si].cmds[ci].argv[ai].clone();
                for s in SIMPLER {
                    if s.len() < arg.len() || (s.len() == arg.len() && *s < arg.as_slice()) {
                        let mut candidate = steps.clone();
                        candidate[si].cmds[ci].argv[ai] = s.to_vec();
                        if cx.test(&candidate) {
                            steps = candidate;
                            break;
                        }
                    }
                }
            }
        }
    }
    // Capture the final outcome on the reduced sequence.
    let budget_left = cx.replays < cx.budget;
    if budget_left {
        cx.test(&steps);
    }
    Minimized { steps, replays: cx.replays, reproduced: true, last: cx.last }
}
