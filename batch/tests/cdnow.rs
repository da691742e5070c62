//! BG/NBD and Gamma-Gamma fitted on the CDNOW sample (2,357 customers, time
//! in weeks) agree with the parameters published by Fader, Hardie and Lee.
//! The data file comes from the `lifetimes` package; see fixtures/README.md.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use batch::predict::{BgNbd, GammaGamma, Rfm};

fn cdnow() -> Vec<Rfm> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cdnow_customers_summary_with_transactions.csv"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        // ID, x, t_x, T, zbar
        out.push(Rfm {
            x: f[1],
            t_x: f[2],
            t_cal: f[3],
            m: f[4],
        });
    }
    out
}

fn within(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{got} vs published {want} (relative tolerance {rel})"
    );
}

#[test]
fn bgnbd_fit_matches_the_paper() {
    let data = cdnow();
    assert_eq!(data.len(), 2357);
    let (m, ll) = BgNbd::fit(&data);
    // Fader, Hardie and Lee (2005): r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4.
    within(m.r, 0.243, 0.01);
    within(m.alpha, 4.414, 0.01);
    within(m.a, 0.793, 0.01);
    within(m.b, 2.426, 0.01);
    within(ll, -9582.4, 1e-4);
    // The likelihood at the published parameters is the published value.
    let published = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    within(published.total_ll(&data), -9582.4, 1e-4);
}

#[test]
fn gamma_gamma_fit_matches_the_paper() {
    let data = cdnow();
    let repeat = data.iter().filter(|c| c.x > 0.0).count();
    assert_eq!(repeat, 946);
    let (g, _) = GammaGamma::fit(&data);
    // Fader, Hardie and Lee (2005, RFM and CLV): p 6.25, q 3.74, gamma 15.44.
    within(g.p, 6.25, 0.01);
    within(g.q, 3.74, 0.01);
    within(g.gamma, 15.44, 0.01);
}

#[test]
fn expected_purchases_are_plausible_on_cdnow() {
    let (m, _) = BgNbd::fit(&cdnow());
    // A customer with no repeat purchases in 39 weeks is expected to buy
    // less over the next 39 weeks than one with 10 repeats, recently.
    let quiet = Rfm {
        x: 0.0,
        t_x: 0.0,
        t_cal: 39.0,
        m: 0.0,
    };
    let busy = Rfm {
        x: 10.0,
        t_x: 38.0,
        t_cal: 39.0,
        m: 30.0,
    };
    let gone = Rfm {
        x: 10.0,
        t_x: 5.0,
        t_cal: 39.0,
        m: 30.0,
    };
    let (q, b, g) = (
        m.expected_purchases(&quiet, 39.0),
        m.expected_purchases(&busy, 39.0),
        m.expected_purchases(&gone, 39.0),
    );
    assert!(q > 0.0 && q < 0.5, "{q}");
    assert!(b > 5.0, "{b}");
    // Same frequency, but silent for 34 weeks: probably dropped out.
    assert!(g < b / 3.0, "{g} vs {b}");
}
