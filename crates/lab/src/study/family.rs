//! One family: every comparison and contrast of a report, over one sweep or several, corrected together
//! (Holm), with the simultaneous intervals, MDDs, equivalence bounds and verdicts that depend on the
//! family's size. A crossing declared after the runs (`report --cross`) is a family of its own.

use crate::study::compare::{self, ALPHA, Comparison, POWER, Test, Verdict};
use crate::study::groups::Study;
use crate::study::stats;
use crate::study::{contrasts, crossing, selection, test_set};
use anyhow::Result;

/// Every comparison of every study, tested as one family.
pub fn comparisons(studies: &[Study]) -> Result<Vec<Comparison>> {
    let mut out = vec![];
    for study in studies {
        let answers = test_set::load(study)?;
        for (i, references) in compare::references_of(&study.sweep, &study.groups)
            .into_iter()
            .enumerate()
        {
            for r in references {
                let (group, reference) = (&study.groups[i], &study.groups[r]);
                let mut c = compare::compare(study, group, reference);
                let paired = c.test == Test::Paired;
                test_set::fill(&mut c, &answers, group, reference, paired);
                out.push(c);
            }
        }
        out.extend(contrasts::contrasts(study));
        out.extend(selection::contrasts(study));
    }
    family(&mut out);
    Ok(out)
}

/// The crossings `report --cross` declares (a main effect or interaction per row), as a family of their own:
/// declared after the runs, they leave the verdicts of the sweeps' own family as they were.
pub fn crossings(studies: &[Study], keys: &[String]) -> Result<Vec<Comparison>> {
    let mut out = vec![];
    for study in studies {
        out.extend(crossing::crossed(study, keys)?);
    }
    family(&mut out);
    Ok(out)
}

/// The family's numbers: Holm over every tested comparison (and, apart, over the gap, ECE, NLL and log-rank
/// p-values), Bonferroni's simultaneous interval, the MDD and the equivalence bound at α/m, the verdicts.
fn family(out: &mut [Comparison]) {
    let tested: Vec<usize> = (0..out.len())
        .filter(|&k| out[k].estimate.is_some())
        .collect();
    let m = tested.len();
    let adjust = |f: &dyn Fn(&Comparison) -> f64| {
        stats::holm(&tested.iter().map(|&k| f(&out[k])).collect::<Vec<_>>())
    };
    let p_holm = adjust(&|c| c.p);
    let tost_holm = adjust(&|c| c.tost_p);
    let gap_holm = adjust(&|c| c.gap_p);
    let ece_holm = adjust(&|c| c.ece_p);
    let nll_holm = adjust(&|c| c.nll_p);
    let lr98 = adjust(&|c| c.logrank_98_p);
    let lr99 = adjust(&|c| c.logrank_99_p);
    let alpha = ALPHA / m.max(1) as f64;
    for (j, &k) in tested.iter().enumerate() {
        let c = &mut out[k];
        let e = c.estimate.expect("tested");
        (c.p_holm, c.tost_p_holm, c.gap_p_holm) = (p_holm[j], tost_holm[j], gap_holm[j]);
        (c.ece_p_holm, c.nll_p_holm) = (ece_holm[j], nll_holm[j]);
        (c.logrank_98_p_holm, c.logrank_99_p_holm) = (lr98[j], lr99[j]);
        (c.sim_low, c.sim_high) = e.interval(1.0 - alpha);
        c.mdd = e.mdd(alpha, POWER);
        c.equivalent_within = e.equivalence_bound(alpha);
        c.family = m;
        c.verdict = Verdict::of(c.p_holm < ALPHA, c.tost_p_holm < ALPHA);
    }
}
